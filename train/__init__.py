"""train — stage 3: a slim CLIP trainer streaming kgclip shards (cluster batches, AHNM, fair sigmoid loss)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kgclip")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
