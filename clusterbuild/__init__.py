"""clusterbuild — stage 2: embed, FAISS k-means, kNN hard images -> WebDataset shards with cluster ids."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kgclip")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
