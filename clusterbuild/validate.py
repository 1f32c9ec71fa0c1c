"""`clusterbuild validate`: check a shard folder against the contract, naming shard and key.

Reads tars with `tarfile` (not webdataset) on purpose: a validator must see truncation, stray
members and dotted names that a tolerant loader would silently skip or mis-group.
"""

from __future__ import annotations

import io
import json
import tarfile
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from clusterbuild import contract


@dataclass(frozen=True)
class Violation:
    shard: str  # shard (or folder file) name
    key: str | None  # sample key, when the problem belongs to one sample
    message: str

    def __str__(self) -> str:
        where = f"{self.shard}:{self.key}" if self.key else self.shard
        return f"{where}: {self.message}"


def _split_member(name: str) -> tuple[str, str]:
    """(key, ext) of a member name: ext is the longest known suffix, the rest is the key."""
    base = name.rsplit("/", 1)[-1]
    for ext in (*contract.MEMBER_ORDER, "jpeg"):
        if base.endswith("." + ext):
            return base[: -len(ext) - 1], ext
    stem, _, ext = base.partition(".")
    return stem, ext


def check_image(data: bytes) -> str | None:
    """None when PIL fully decodes `data`, else the decoder's complaint."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                im.load()
    except Exception as e:  # PIL raises many types for bad data
        return f"undecodable image ({type(e).__name__}: {e})"
    return None


def _read_tar(path: Path) -> tuple[OrderedDict[str, dict[str, bytes]], list[str]]:
    """Members grouped by key in file order, plus problems found while reading."""
    samples: OrderedDict[str, dict[str, bytes]] = OrderedDict()
    problems: list[str] = []
    try:
        with tarfile.open(path, mode="r") as tar:
            for ti in tar:
                if not ti.isfile():
                    continue
                f = tar.extractfile(ti)
                data = f.read() if f else b""
                if len(data) != ti.size:
                    raise tarfile.ReadError(f"member {ti.name} truncated ({len(data)} of {ti.size} bytes)")
                key, ext = _split_member(ti.name)
                samples.setdefault(key, {})[ext] = data
            end = tar.offset
        # tarfile ends quietly at a header cut short, so a tar truncated between members reads as
        # complete: require the end-of-archive marker (two zero blocks) that every tar writer puts.
        with open(path, "rb") as f:
            f.seek(end)
            tail = f.read()
        if len(tail) < 2 * tarfile.BLOCKSIZE or tail[: 2 * tarfile.BLOCKSIZE].strip(b"\0"):
            raise tarfile.ReadError(f"no end-of-archive marker after byte {end} (file cut short?)")
    except (tarfile.TarError, OSError, EOFError) as e:
        problems.append(f"truncated or unreadable tar ({type(e).__name__}: {e})")
    return samples, problems


def validate_folder(folder: Path, check_images: bool = True) -> list[Violation]:
    """Every violation of the contract in `folder` ([] when it conforms)."""
    folder = Path(folder)
    out: list[Violation] = []
    if not folder.is_dir():
        return [Violation(str(folder), None, "not a folder")]
    from clusterbuild.contract import list_shards

    shards = list_shards(folder)
    if not shards:
        out.append(Violation(folder.name, None, "no shard tars (NNNNNN.tar) in folder"))
    sizes: dict[str, int] | None = None
    try:
        sizes = json.loads((folder / contract.SIZES_FILE).read_text())
        if not isinstance(sizes, dict):
            raise ValueError("not an object")
    except FileNotFoundError:
        out.append(Violation(contract.SIZES_FILE, None, "missing (open_clip needs it to count samples)"))
    except ValueError as e:
        out.append(Violation(contract.SIZES_FILE, None, f"unreadable: {e}"))
        sizes = None
    if not (folder / contract.INFO_FILE).is_file():
        out.append(Violation(contract.INFO_FILE, None, "missing (provenance of the folder)"))

    seen: dict[str, str] = {}
    for path in shards:
        name = path.name
        samples, problems = _read_tar(path)
        out += [Violation(name, None, p) for p in problems]
        for key, members in samples.items():
            why = contract.check_key(key)
            if why:
                out.append(Violation(name, key, why))
            if key in seen:
                out.append(Violation(name, key, f"duplicate key (also in {seen[key]})"))
            else:
                seen[key] = name
            for ext in sorted(e for e in members if e.rsplit(".", 1)[-1].lower() in contract.PICKLE_EXTS):
                out.append(Violation(name, key, f"member .{ext} is a Python pickle (never in a kgclip shard)"))
            images = [e for e in contract.IMAGE_EXTS if e in members]
            if not images:
                out.append(Violation(name, key, f"missing image member ({'/'.join(contract.IMAGE_EXTS)})"))
            elif check_images:
                bad = check_image(members[images[0]])
                if bad:
                    out.append(Violation(name, key, bad))
            if contract.TXT not in members:
                out.append(Violation(name, key, "missing txt member"))
            elif not members[contract.TXT].strip():
                out.append(Violation(name, key, "empty txt member"))
            if contract.JSON not in members:
                out.append(Violation(name, key, "missing json member"))
            else:
                try:
                    meta = json.loads(members[contract.JSON])
                except ValueError as e:
                    out.append(Violation(name, key, f"json does not parse: {e}"))
                else:
                    out += [Violation(name, key, m) for m in contract.validate_meta(meta, key=key)]
                    if contract.CLS in members and isinstance(meta, dict):
                        cls = members[contract.CLS].decode("ascii", "replace").strip()
                        if cls != str(meta.get("cluster_id")):
                            out.append(Violation(name, key, f"cls {cls!r} differs from json cluster_id"))
        if sizes is not None:
            if name not in sizes:
                out.append(Violation(name, None, f"not listed in {contract.SIZES_FILE}"))
            elif not problems and sizes[name] != len(samples):
                out.append(Violation(name, None, f"{contract.SIZES_FILE} says {sizes[name]} samples, tar holds {len(samples)}"))
        out += _check_parquet(folder, name, list(samples), problems)
        if not (folder / contract.stats_name(name)).is_file():
            out.append(Violation(name, None, f"missing {contract.stats_name(name)}"))
    if sizes is not None:
        on_disk = {p.name for p in shards}
        for name in sorted(set(sizes) - on_disk):
            out.append(Violation(name, None, f"listed in {contract.SIZES_FILE} but missing on disk"))
    return out


def _check_parquet(folder: Path, shard: str, keys: list[str], tar_problems: list[str]) -> list[Violation]:
    import pyarrow.parquet as pq

    path = folder / contract.parquet_name(shard)
    if not path.is_file():
        return [Violation(shard, None, f"missing {path.name}")]
    try:
        pkeys = pq.read_table(path, columns=["key"]).column("key").to_pylist()
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, KeyError...
        return [Violation(path.name, None, f"unreadable parquet ({type(e).__name__}: {e})")]
    if not tar_problems and pkeys != keys:
        return [Violation(path.name, None, "keys differ from the tar's keys or order")]
    return []
