"""kgaug — stage 1: scene graphs + a knowledge graph -> grounded pseudo-captions and hard negatives."""

from importlib.metadata import PackageNotFoundError, version

from kgaug import _compiled

try:
    __version__ = version("kgclip")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# The per-image modules compiled by `python -m kgaug.native build`, when built for these sources and this
# Python: found before the .py files of the same names (see kgaug/native.py).
_path = _compiled.package_path()
if _path is not None:
    __path__.insert(0, _path)
