"""Fixtures for the kgaug tests (helpers live in helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kgaug.helpers import tiny_world, write_vg


@pytest.fixture
def tiny_vg(tmp_path: Path) -> Path:
    return write_vg(tmp_path / "vg", tiny_world())
