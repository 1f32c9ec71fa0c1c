"""Which compiled modules `kgaug` may load (see kgaug/native.py): read on every import of the package,
so it imports nothing heavy."""

from __future__ import annotations

import hashlib
import json
import os
import sysconfig
import warnings
from pathlib import Path

# The modules of pass 2 (pseudo-captions, negatives, validation, KG look-ups, rows), and of pass 1's
# reading: jsonstream, sources/vg and scene_graph (GraphBuilder, Obj, Rel; SceneGraph and PackedGraph
# stay plain Python classes, as PackedGraph fills its own attributes at run time). A subpackage's
# module is named by its path (sources/vg; kgaug/sources/__init__.py puts the build in front of that
# package's __path__).
# Not compiled: the lexicon package (its data files live beside it), start-up and I/O code (build.py:
# forked workers and closures, and not where the time goes).
MODULES = ("negatives", "evidence", "kg", "captions", "generate", "scene_graph", "jsonstream",
           "sources/vg")
PACKAGE = Path(__file__).resolve().parent
NATIVE = PACKAGE / "_native"  # holds kgaug/<module>.<abi>.so (a package path entry) and stamp.json
STAMP = "stamp.json"
PURE_ENV = "KGAUG_PURE"


def _digest(module: str) -> str:
    return hashlib.sha256((PACKAGE / f"{module}.py").read_bytes()).hexdigest()


def _abi() -> str:
    return sysconfig.get_config_var("EXT_SUFFIX") or ""


def stale_reason(native: Path | None = None) -> str | None:
    """Why the build in `native` (default NATIVE) must not be used (None: it matches the sources and
    this Python)."""
    native = NATIVE if native is None else native
    try:
        stamp = json.loads((native / STAMP).read_text())
    except (OSError, ValueError):
        return "no stamp"
    if stamp.get("abi") != _abi():
        return f"built for {stamp.get('abi')}, this Python loads {_abi()}"
    changed = [m for m in MODULES if stamp.get("sources", {}).get(m) != _digest(m)]
    if changed:
        return f"{', '.join(f'kgaug/{m}.py' for m in changed)} changed since the build"
    return None


def package_path() -> str | None:
    """The folder to put in front of `kgaug.__path__`, or None (nothing built, stale, or KGAUG_PURE)."""
    if os.environ.get(PURE_ENV) or not (NATIVE / STAMP).exists():
        return None
    why = stale_reason()
    if why is not None:
        warnings.warn(f"kgaug: compiled modules not used ({why}); running the Python sources. "
                      f"Rebuild with `python -m kgaug.native build`.", RuntimeWarning, stacklevel=3)
        return None
    return str(NATIVE / "kgaug")
