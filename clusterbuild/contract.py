"""The shard contract: the one place that names what a kgclip shard holds.

The writer (`clusterbuild.shardio`), the validator (`clusterbuild.validate`) and the trainer's
reader (`train.data`) import every member name, JSON field and per-folder file name from here;
`shards/README.md` is the same contract in prose. Bump `SCHEMA` when a field changes meaning.

A sample is a group of tar members sharing one key (no dots in the key, because webdataset and
open_clip split member names at the first dot):

    <key>.jpg | <key>.png | <key>.webp   the image (original bytes when they were already fine)
    <key>.txt                            the primary caption: all that open_clip's trainer reads
    <key>.json                           everything else, see `SAMPLE_FIELDS`
    <key>.cls                            optional: the cluster id as decimal text
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgclip import atomic, vocab

SCHEMA = "kgclip.sample/1"

# --- tar members -------------------------------------------------------------------------------
IMAGE_EXTS: tuple[str, ...] = ("jpg", "png", "webp")
TXT = "txt"
JSON = "json"
CLS = "cls"
MEMBER_ORDER: tuple[str, ...] = (CLS, *IMAGE_EXTS, JSON, TXT)  # sorted, like webdataset writes
# Members webdataset's decoders unpickle (torch.load for .pth/.pt): a kgclip shard never holds one, and
# the reader refuses a sample that does (decoding it in another pipeline could run code).
PICKLE_EXTS: tuple[str, ...] = ("pyd", "pickle", "pkl", "pth", "pt")

# --- per-folder files --------------------------------------------------------------------------
SIZES_FILE = "sizes.json"  # {shard file name: sample count}; open_clip's get_dataset_size reads it
INFO_FILE = "_info.json"  # provenance of the whole folder
STATS_SUFFIX = "_stats.json"  # <shard stem>_stats.json, img2dataset style
PARQUET_SUFFIX = ".parquet"  # <shard stem>.parquet: one row per sample, same order as the tar
SHARD_PATTERN = "{index:06d}.tar"
SHARD_RE = re.compile(r"^(\d{6})\.tar$")
TMP_PREFIX, TMP_SUFFIX = atomic.TMP_PREFIX, atomic.TMP_SUFFIX  # in-progress files: ".000003.tar.tmp-<pid>-<thread>"

# --- hard-negative types (SugarCrepe's seven + relation reversal; kgaug generates them in this order) --
NEGATIVE_TYPES: tuple[str, ...] = vocab.NEGATIVE_TYPES

KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class Field:
    """One JSON field of a sample: its name, Python type(s), and whether it must be present."""

    name: str
    types: tuple[type, ...]
    required: bool = True
    doc: str = ""


SAMPLE_FIELDS: tuple[Field, ...] = (
    Field("schema", (str,), doc=f'always "{SCHEMA}"'),
    Field("key", (str,), doc="the sample key, identical to the tar member stem"),
    Field("source", (str,), doc="vg | coco | captions | webdataset | synthetic"),
    Field("captions", (list,), doc="all human captions (strings); txt is one of them"),
    Field("pseudo_captions", (list,), doc="[{text, facts: [str]}] from the scene graph"),
    Field("hard_negatives", (list,), doc="[{type, text, from, to, ...}] rule-based, KG-validated"),
    Field("cluster_id", (int,), doc="FAISS k-means cluster (samples of a cluster are contiguous)"),
    Field("knn", (list,), doc="keys of the nearest other images (hard image negatives)"),
    Field("sensitive", (dict,), doc="sensitive-attribute tags, e.g. {'gender': 'female'}; may be {}"),
    Field("weight", (float, int), doc="per-sample loss weight (balancing); 1.0 by default"),
    Field("near_duplicates", (list,), required=False, doc="knn keys above the duplicate threshold"),
    Field("image", (str, type(None)), required=False, doc="the image's original path or URL"),
    Field("scene_graph", (dict,), required=False, doc="compact scene graph (objects, relations)"),
    Field("license", (str, type(None)), required=False, doc="license of the image, when known"),
    Field("width", (int,), required=False, doc="image width in pixels as stored"),
    Field("height", (int,), required=False, doc="image height in pixels as stored"),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in SAMPLE_FIELDS)
REQUIRED_FIELDS: tuple[str, ...] = tuple(f.name for f in SAMPLE_FIELDS if f.required)
_FIELDS = {f.name: f for f in SAMPLE_FIELDS}

HARD_NEGATIVE_FIELDS = ("type", "text", "from", "to")

# Columns of the per-shard parquet (key + flat metadata + the full json, in tar order).
PARQUET_COLUMNS: tuple[str, ...] = (
    "key",
    "source",
    "txt",
    "image_ext",
    "cluster_id",
    "n_captions",
    "n_pseudo_captions",
    "n_hard_negatives",
    "weight",
    "json",
)


def shard_name(index: int) -> str:
    return SHARD_PATTERN.format(index=index)


def stats_name(shard: str) -> str:
    return shard.removesuffix(".tar") + STATS_SUFFIX


def parquet_name(shard: str) -> str:
    return shard.removesuffix(".tar") + PARQUET_SUFFIX


def brace_pattern(shards: list[str]) -> str:
    """`{000000..000003}.tar` for contiguous shard names (what open_clip's --train-data takes)."""
    idx = sorted(int(SHARD_RE.match(s).group(1)) for s in shards)
    if len(idx) == 1:
        return shard_name(idx[0])
    return f"{{{idx[0]:06d}..{idx[-1]:06d}}}.tar"


def check_key(key: str) -> str | None:
    """None when `key` is a valid sample key, else why not."""
    if not isinstance(key, str) or not key:
        return "empty key"
    if "." in key:
        return f"key {key!r} contains a dot (webdataset splits member names at the first dot)"
    if not KEY_RE.match(key):
        return f"key {key!r} has characters outside [A-Za-z0-9_-]"
    return None


def validate_meta(meta: Any, key: str | None = None) -> list[str]:
    """Every way `meta` (a decoded json member) breaks the contract; [] when it conforms."""
    if not isinstance(meta, Mapping):
        return [f"json is a {type(meta).__name__}, not an object"]
    errors: list[str] = []
    for name in REQUIRED_FIELDS:
        if name not in meta:
            errors.append(f"json lacks required field {name!r}")
    for name, value in meta.items():
        f = _FIELDS.get(name)
        if f is None:
            continue  # extra fields are allowed (forward compatible)
        if isinstance(value, bool) or not isinstance(value, f.types):
            errors.append(f"json field {name!r} is {type(value).__name__}, expected {'/'.join(t.__name__ for t in f.types)}")
    if meta.get("schema", SCHEMA) != SCHEMA:
        errors.append(f"json schema is {meta.get('schema')!r}, expected {SCHEMA!r}")
    if key is not None and "key" in meta and meta["key"] != key:
        errors.append(f"json key {meta['key']!r} differs from member key {key!r}")
    w = meta.get("weight")
    if isinstance(w, (int, float)) and not isinstance(w, bool) and (not math.isfinite(w) or w < 0):
        errors.append(f"json weight {w!r} is not a finite non-negative number")
    for i, c in enumerate(meta.get("captions") or []):
        if not isinstance(c, str):
            errors.append(f"captions[{i}] is not a string")
    for i, p in enumerate(meta.get("pseudo_captions") or []):
        if not isinstance(p, Mapping) or not isinstance(p.get("text"), str) or not isinstance(p.get("facts"), list):
            errors.append(f"pseudo_captions[{i}] is not {{text: str, facts: list}}")
    for i, n in enumerate(meta.get("hard_negatives") or []):
        if not isinstance(n, Mapping):
            errors.append(f"hard_negatives[{i}] is not an object")
            continue
        missing = [k for k in HARD_NEGATIVE_FIELDS if k not in n]
        if missing:
            errors.append(f"hard_negatives[{i}] lacks {', '.join(missing)}")
        elif not isinstance(n["text"], str) or n["type"] not in NEGATIVE_TYPES:
            errors.append(f"hard_negatives[{i}] has type {n['type']!r} or non-string text")
    for name in ("knn", "near_duplicates"):
        for i, k in enumerate(meta.get(name) or []):
            if not isinstance(k, str):
                errors.append(f"{name}[{i}] is not a key string")
    return errors


@dataclass
class Sample:
    """One decoded sample: what the writer takes and the reader gives back."""

    key: str
    image: bytes | None
    image_ext: str
    txt: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def cluster_id(self) -> int:
        return int(self.meta.get("cluster_id", -1))


def make_meta(
    key: str,
    source: str,
    captions: list[str],
    pseudo_captions: list[dict] | None = None,
    hard_negatives: list[dict] | None = None,
    cluster_id: int = -1,
    knn: list[str] | None = None,
    sensitive: dict | None = None,
    weight: float = 1.0,
    **extra: Any,
) -> dict[str, Any]:
    """A json member with every required field, in the contract's field order."""
    meta: dict[str, Any] = {
        "schema": SCHEMA,
        "key": key,
        "source": source,
        "captions": list(captions),
        "pseudo_captions": list(pseudo_captions or []),
        "hard_negatives": list(hard_negatives or []),
        "cluster_id": int(cluster_id),
        "knn": list(knn or []),
        "sensitive": dict(sensitive or {}),
        "weight": float(weight),
    }
    meta.update(extra)
    return meta


def dumps_json(meta: Mapping[str, Any]) -> bytes:
    """Canonical json bytes: sorted keys, no whitespace, UTF-8 — so equal metas give equal bytes."""
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode_sample(sample: Sample, with_cls: bool = True) -> list[tuple[str, bytes]]:
    """Tar members `(name, bytes)` of one sample, in `MEMBER_ORDER`."""
    why = check_key(sample.key)
    if why:
        raise ValueError(why)
    if sample.image_ext not in IMAGE_EXTS:
        raise ValueError(f"{sample.key}: image extension {sample.image_ext!r} not in {IMAGE_EXTS}")
    if sample.image is None:
        raise ValueError(f"{sample.key}: a shard sample needs image bytes")
    members = {
        sample.image_ext: sample.image,
        TXT: sample.txt.encode("utf-8"),
        JSON: dumps_json(sample.meta),
    }
    if with_cls and "cluster_id" in sample.meta:
        members[CLS] = str(int(sample.meta["cluster_id"])).encode("ascii")
    return [(f"{sample.key}.{ext}", members[ext]) for ext in MEMBER_ORDER if ext in members]


def decode_sample(raw: Mapping[str, Any]) -> Sample:
    """A `Sample` from a raw webdataset dict (`__key__` plus member bytes), undecoded image."""
    key = raw["__key__"]
    why = check_key(key)
    if why:  # e.g. '../../x' from a member named '../../x.jpg': never used to name a file
        raise ValueError(f"sample refused: {why}")
    pickled = sorted(e for e in raw if e.rsplit(".", 1)[-1].lower() in PICKLE_EXTS)
    if pickled:
        raise ValueError(f"{key}: member .{pickled[0]} is a Python pickle; refused (kgclip shards never hold one)")
    ext = next((e for e in IMAGE_EXTS if e in raw), None)
    if ext is None:
        raise KeyError(f"{key}: no image member ({'/'.join(IMAGE_EXTS)})")
    if TXT not in raw:
        raise KeyError(f"{key}: no {TXT} member")
    txt = raw[TXT]
    meta = raw.get(JSON, b"{}")
    return Sample(
        key=key,
        image=raw[ext],
        image_ext=ext,
        txt=txt.decode("utf-8") if isinstance(txt, bytes) else txt,
        meta=json.loads(meta) if isinstance(meta, (bytes, str)) else dict(meta),
    )


def parquet_row(sample: Sample) -> dict[str, Any]:
    """The per-shard parquet row of a sample (columns `PARQUET_COLUMNS`)."""
    m = sample.meta
    return {
        "key": sample.key,
        "source": m.get("source"),
        "txt": sample.txt,
        "image_ext": sample.image_ext,
        "cluster_id": int(m.get("cluster_id", -1)),
        "n_captions": len(m.get("captions", [])),
        "n_pseudo_captions": len(m.get("pseudo_captions", [])),
        "n_hard_negatives": len(m.get("hard_negatives", [])),
        "weight": float(m.get("weight", 1.0)),
        "json": dumps_json(m).decode("utf-8"),
    }


def iter_samples(urls: str | list[str]) -> Iterator[Sample]:
    """Every sample of `urls`, in order, read through webdataset and decoded to `Sample` (image left
    as bytes)."""
    from kgclip.wds import open_webdataset

    ds = open_webdataset(urls)
    try:
        for raw in ds:
            if not raw:  # webdataset >= 0.2.96 yields {} at the end of each shard
                continue
            yield decode_sample(raw)
    finally:
        close = getattr(ds, "close", None)
        if close:
            close()


# --- reading a shard folder ------------------------------------------------------------------------

def list_shards(folder: str | Path) -> list[Path]:
    """Final shard tars of a folder in index order (temp files are ignored)."""
    return sorted(p for p in Path(folder).iterdir() if SHARD_RE.match(p.name))


def read_sizes(folder: str | Path) -> dict[str, int]:
    """`sizes.json` of a shard folder: {shard file name: sample count}."""
    return json.loads((Path(folder) / SIZES_FILE).read_text())
