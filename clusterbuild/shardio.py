"""Shard folder I/O: deterministic, atomic tar writing and per-folder files of the contract.

Tars are written with the standard library's `tarfile` rather than webdataset's `TarWriter`
because webdataset 0.2.86 stamps every member with the wall-clock mtime (1.0.x takes `mtime=`),
and a rerun must give byte-identical shards with either version installed. Reading goes through
webdataset (`kgclip.wds.open_webdataset`, `contract.iter_samples`) so other trainers see exactly what we
test.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from pathlib import Path

from clusterbuild import contract
from kgclip.atomic import atomic_write_bytes, atomic_write_json

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


def tar_bytes(samples: Iterable[contract.Sample], with_cls: bool = True) -> bytes:
    """One shard as bytes: members of each sample contiguous, in contract order, fixed headers."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for sample in samples:
            for name, data in contract.encode_sample(sample, with_cls=with_cls):
                tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
    return buf.getvalue()


def write_shard(folder: Path, index: int, samples: list[contract.Sample], with_cls: bool = True,
                stats_extra: dict | None = None) -> str:
    """Write `<index>.tar`, its parquet and `_stats.json`, each atomically; returns the tar name.

    The tar is renamed into place last, so a folder never shows a final tar whose companions are
    missing; a crash leaves only hidden `.tmp` files, which the next run overwrites.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    name = contract.shard_name(index)
    rows = [contract.parquet_row(s) for s in samples]
    table = pa.Table.from_pylist(rows, schema=parquet_schema())
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    atomic_write_bytes(folder / contract.parquet_name(name), sink.getvalue().to_pybytes())
    stats = {"count": len(samples), "successes": len(samples), "shard": name}
    stats.update(stats_extra or {})
    atomic_write_json(folder / contract.stats_name(name), stats)
    atomic_write_bytes(folder / name, tar_bytes(samples, with_cls=with_cls))
    return name


def parquet_schema():
    import pyarrow as pa

    types = {
        "key": pa.string(), "source": pa.string(), "txt": pa.string(), "image_ext": pa.string(),
        "cluster_id": pa.int64(), "n_captions": pa.int32(), "n_pseudo_captions": pa.int32(),
        "n_hard_negatives": pa.int32(), "weight": pa.float64(), "json": pa.string(),
    }
    return pa.schema([(c, types[c]) for c in contract.PARQUET_COLUMNS])


def write_shard_set(folder: Path, samples: Iterable[contract.Sample], samples_per_shard: int,
                    info: dict | None = None, with_cls: bool = True) -> dict[str, int]:
    """Write a whole folder (tars, parquets, stats, sizes.json, _info.json) from ordered samples."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, int] = {}
    batch: list[contract.Sample] = []
    index = 0
    for s in samples:
        batch.append(s)
        if len(batch) == samples_per_shard:
            sizes[write_shard(folder, index, batch, with_cls)] = len(batch)
            batch, index = [], index + 1
    if batch:
        sizes[write_shard(folder, index, batch, with_cls)] = len(batch)
    write_sizes(folder, sizes)
    meta = {"schema": contract.SCHEMA, "num_samples": sum(sizes.values()), "num_shards": len(sizes)}
    meta.update(info or {})
    atomic_write_json(folder / contract.INFO_FILE, meta)
    return sizes


def write_sizes(folder: Path, sizes: dict[str, int]) -> None:
    atomic_write_json(Path(folder) / contract.SIZES_FILE, dict(sorted(sizes.items())))
