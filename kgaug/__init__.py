"""kgaug — stage 1: scene graphs + a knowledge graph -> grounded pseudo-captions and hard negatives."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kgclip")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
