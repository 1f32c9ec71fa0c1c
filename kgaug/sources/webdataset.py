"""Existing WebDataset shards (jpg/png + txt, e.g. img2dataset output): one record per sample.

The image bytes are written to `<out>/images/<key>.<ext>` so the table's `image` column is a plain
path, as for every other source."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from kgaug.sources import InputError, Record, Skip, make_key
from kgclip.atomic import atomic_write_bytes

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def read_webdataset(pattern: str, out_images: Path) -> Iterator[Record | Skip]:
    from kgclip.wds import open_webdataset

    errors: list[str] = []

    def handler(exn: Exception) -> bool:
        errors.append(f"{type(exn).__name__}: {exn}")
        return True

    try:
        ds = open_webdataset(pattern, handler=handler)
    except (ValueError, OSError) as e:
        raise InputError(f"--shards {pattern}: {e}") from None
    out_images.mkdir(parents=True, exist_ok=True)
    n = 0
    try:
        for raw in ds:
            while errors:
                yield Skip(f"shards {pattern}", f"unreadable shard or member ({errors.pop(0)})")
            if not raw:
                continue
            n += 1
            key = raw.get("__key__", "")
            where = f"{raw.get('__url__', pattern)} sample {key}"
            ext = next((e for e in IMAGE_EXTS if e in raw), None)
            if ext is None:
                yield Skip(where, "sample without an image member")
                continue
            text = raw.get("txt")
            caption = text.decode("utf-8", errors="replace").strip() if isinstance(text, bytes) else ""
            meta = {}
            if isinstance(raw.get("json"), bytes):
                try:
                    meta = json.loads(raw["json"])
                except json.JSONDecodeError:
                    meta = {}
            if not caption and isinstance(meta.get("caption"), str):
                caption = meta["caption"].strip()
            if not caption:
                yield Skip(where, "sample without a caption")
                continue
            rkey = make_key("webdataset", key)
            path = out_images / f"{rkey}.{ext}"
            atomic_write_bytes(path, raw[ext], fsync=False)
            lic = meta.get("license") if isinstance(meta.get("license"), str) else None
            yield Record(rkey, "webdataset", str(path), [caption], license=lic)
    finally:
        close = getattr(ds, "close", None)
        if close:
            close()
    while errors:
        yield Skip(f"shards {pattern}", f"unreadable shard or member ({errors.pop(0)})")
    if n == 0:
        raise InputError(f"--shards {pattern}: no samples found")
