"""Atomic file writes: a file is either absent, the old one, or the whole new one.

Every writer goes through a hidden temporary file in the target's folder (same file system, so
`os.replace` is atomic), named after the process and thread (concurrent writers of one path never share
a temporary), and removed when the write fails."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TMP_PREFIX = "."  # in-progress files are hidden: ".000003.tar.tmp-<pid>-<thread>"
TMP_SUFFIX = ".tmp"


def temporary_name(path: Path) -> Path:
    """The hidden temporary file `atomic_path` writes `path` through."""
    return path.with_name(f"{TMP_PREFIX}{path.name}{TMP_SUFFIX}-{os.getpid()}-{threading.get_ident()}")


@contextmanager
def atomic_path(path: str | os.PathLike, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path` (after an fsync), on failure it
    is removed and `path` is untouched."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> None:
    with atomic_path(path, fsync) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str, fsync: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), fsync)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Pretty JSON (indent 2, sorted keys, UTF-8, final newline): the form kgclip's small metadata
    files take (`_info.json`, `summary.json`, reports of the benchmarks)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
