"""Shard folder I/O: deterministic, atomic tar writing and per-folder files of the contract.

Tars are written with the standard library's `tarfile` rather than webdataset's `TarWriter`
because webdataset 0.2.86 stamps every member with the wall-clock mtime (1.0.x takes `mtime=`),
and a rerun must give byte-identical shards with either version installed. Reading goes through
webdataset (`open_webdataset`) so other trainers see exactly what we test.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from clusterbuild import contract as C

TAR_MTIME = 0  # fixed member mtime/owner: same samples -> same bytes
TAR_OWNER = "kgclip"


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = TAR_MTIME
    ti.mode = 0o444
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = TAR_OWNER
    ti.type = tarfile.REGTYPE
    return ti


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a hidden temp file in the same folder + `os.replace`."""
    path = Path(path)
    tmp = path.with_name(f"{C.TMP_PREFIX}{path.name}{C.TMP_SUFFIX}-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())


def tar_bytes(samples: Iterable[C.Sample], with_cls: bool = True) -> bytes:
    """One shard as bytes: members of each sample contiguous, in contract order, fixed headers."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for sample in samples:
            for name, data in C.encode_sample(sample, with_cls=with_cls):
                tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
    return buf.getvalue()


def write_shard(folder: Path, index: int, samples: list[C.Sample], with_cls: bool = True,
                stats_extra: dict | None = None) -> str:
    """Write `<index>.tar`, its parquet and `_stats.json`, each atomically; returns the tar name.

    The tar is renamed into place last, so a folder never shows a final tar whose companions are
    missing; a crash leaves only hidden `.tmp` files, which the next run overwrites.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    name = C.shard_name(index)
    rows = [C.parquet_row(s) for s in samples]
    table = pa.Table.from_pylist(rows, schema=parquet_schema())
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    atomic_write_bytes(folder / C.parquet_name(name), sink.getvalue().to_pybytes())
    stats = {"count": len(samples), "successes": len(samples), "shard": name}
    stats.update(stats_extra or {})
    atomic_write_json(folder / C.stats_name(name), stats)
    atomic_write_bytes(folder / name, tar_bytes(samples, with_cls=with_cls))
    return name


def parquet_schema():
    import pyarrow as pa

    types = {
        "key": pa.string(), "source": pa.string(), "txt": pa.string(), "image_ext": pa.string(),
        "cluster_id": pa.int64(), "n_captions": pa.int32(), "n_pseudo_captions": pa.int32(),
        "n_hard_negatives": pa.int32(), "weight": pa.float64(), "json": pa.string(),
    }
    return pa.schema([(c, types[c]) for c in C.PARQUET_COLUMNS])


def write_shard_set(folder: Path, samples: Iterable[C.Sample], samples_per_shard: int,
                    info: dict | None = None, with_cls: bool = True) -> dict[str, int]:
    """Write a whole folder (tars, parquets, stats, sizes.json, _info.json) from ordered samples."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, int] = {}
    batch: list[C.Sample] = []
    index = 0
    for s in samples:
        batch.append(s)
        if len(batch) == samples_per_shard:
            sizes[write_shard(folder, index, batch, with_cls)] = len(batch)
            batch, index = [], index + 1
    if batch:
        sizes[write_shard(folder, index, batch, with_cls)] = len(batch)
    write_sizes(folder, sizes)
    meta = {"schema": C.SCHEMA, "num_samples": sum(sizes.values()), "num_shards": len(sizes)}
    meta.update(info or {})
    atomic_write_json(folder / C.INFO_FILE, meta)
    return sizes


def write_sizes(folder: Path, sizes: dict[str, int]) -> None:
    atomic_write_json(Path(folder) / C.SIZES_FILE, dict(sorted(sizes.items())))


def list_shards(folder: Path) -> list[Path]:
    """Final shard tars of a folder in index order (temp files are ignored)."""
    return sorted(p for p in Path(folder).iterdir() if C.SHARD_RE.match(p.name))


def read_sizes(folder: Path) -> dict[str, int]:
    return json.loads((Path(folder) / C.SIZES_FILE).read_text())


# --- reading through webdataset (0.2.86 and 1.0.x) -----------------------------------------------

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


def iter_samples(urls: str | list[str]) -> Iterator[C.Sample]:
    """Every sample of `urls`, in order, decoded to `contract.Sample` (image left as bytes)."""
    ds = open_webdataset(urls)
    try:
        for raw in ds:
            if not raw:  # webdataset >= 0.2.96 yields {} at the end of each shard
                continue
            yield C.decode_sample(raw)
    finally:
        close = getattr(ds, "close", None)
        if close:
            close()
