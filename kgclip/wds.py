"""Reading WebDataset shards on both webdataset majors (0.2.86, which open_clip's trainer pins, and 1.0.x)."""

from __future__ import annotations

import inspect
from typing import Any


def _wds_kwargs(**wanted: Any) -> dict[str, Any]:
    """Keep only the WebDataset() keyword arguments this webdataset version understands."""
    import webdataset as wds

    params = inspect.signature(wds.WebDataset.__init__).parameters
    return {k: v for k, v in wanted.items() if k in params}


def open_webdataset(urls: str | list[str], shardshuffle: int | bool = False, seed: int = 0,
                    split_by_node: bool = False, handler=None):
    """A raw `webdataset.WebDataset` over `urls` with explicit options on both major versions.

    1.0.x warns without `shardshuffle`, fails on workers with no shard unless `empty_check=False`,
    and raises on multi-process runs without an explicit node splitter; 0.2.86 rejects those
    keywords. Samples come out undecoded (member bytes), ready for `contract.decode_sample`.
    """
    import webdataset as wds

    kw = _wds_kwargs(
        shardshuffle=shardshuffle,
        nodesplitter=wds.split_by_node if split_by_node else wds.single_node_only,
        empty_check=False,
        seed=seed,
    )
    if handler is not None:
        kw["handler"] = handler
    return wds.WebDataset(urls, **kw)
