"""Builders for small kgaug-format inputs (written with kgaug.table.TABLE_SCHEMA) and shard folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

COLOURS = [(220, 30, 30), (30, 160, 40), (40, 60, 220), (230, 200, 20), (140, 40, 170), (20, 190, 190),
           (250, 130, 10), (90, 90, 90)]
SHAPES = ["circle", "square", "triangle"]


def draw_image(path: Path, i: int, size: int = 96, fmt: str | None = None) -> Path:
    """A small picture: a coloured shape on a contrasting background, different for each i."""
    from PIL import Image, ImageDraw

    fg = COLOURS[i % len(COLOURS)]
    bg = tuple(255 - c for c in COLOURS[(i * 3 + 1) % len(COLOURS)])
    im = Image.new("RGB", (size + (i % 5) * 8, size), bg)
    d = ImageDraw.Draw(im)
    shape = SHAPES[i % len(SHAPES)]
    box = (10 + i % 7, 12, size - 14, size - 10 - i % 5)
    if shape == "circle":
        d.ellipse(box, fill=fg)
    elif shape == "square":
        d.rectangle(box, fill=fg)
    else:
        d.polygon([(box[0], box[3]), ((box[0] + box[2]) // 2, box[1]), (box[2], box[3])], fill=fg)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format=fmt or ("PNG" if path.suffix == ".png" else "JPEG"), quality=90)
    return path


def kg_row(key: str, image: str | None, caption: str | None = "a red circle on a white table",
           n_neg: int = 2, **over) -> dict:
    """A kgaug table row with every TABLE_SCHEMA column filled plausibly."""
    caps = [caption] if caption else []
    row = {
        "key": key,
        "image": image,
        "source": "synthetic",
        "captions": caps,
        "pseudo_captions": [
            {"text": f"a shape in picture {key}", "facts": [f"shape({key})"], "style": "attribute"},
            {"text": "a circle left of a square", "facts": ["left_of(circle,square)"], "style": "relation"},
        ],
        "hard_negatives": [
            {"type": "replace_att", "text": f"a blue circle on a white table {j}", "from": "red", "to": "blue",
             "fact": "red(circle)", "plausibility": 0.5 + 0.1 * j, "caption": caption or ""}
            for j in range(n_neg)
        ],
        "scene_graph": json.dumps({"objects": [{"name": "circle", "attributes": ["red"]}], "relations": []}),
        "sensitive": {},
        "license": "CC-BY-4.0",
    }
    row.update(over)
    return row


def write_kgaug(folder: Path, rows: list[dict], parts: int = 1) -> Path:
    """A kgaug build output folder (table/part-*.parquet + report.json) holding `rows`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kgaug.table import PART_PATTERN, REPORT_FILE, TABLE_DIR, TABLE_SCHEMA

    (folder / TABLE_DIR).mkdir(parents=True, exist_ok=True)
    step = max(1, -(-len(rows) // parts))
    for p, lo in enumerate(range(0, max(len(rows), 1), step)):
        chunk = [dict(r, sensitive=list((r.get("sensitive") or {}).items())) for r in rows[lo:lo + step]]
        pq.write_table(pa.Table.from_pylist(chunk, schema=TABLE_SCHEMA),
                       folder / TABLE_DIR / PART_PATTERN.format(index=p))
    (folder / REPORT_FILE).write_text(json.dumps({"rows": len(rows)}))
    return folder


def synthetic_rows(img_dir: Path, n: int, prefix: str = "img") -> list[dict]:
    rows = []
    for i in range(n):
        ext = ".png" if i % 4 == 3 else ".jpg"
        p = draw_image(img_dir / f"{prefix}{i:03d}{ext}", i)
        colour = ["red", "green", "blue", "yellow", "purple", "cyan", "orange", "grey"][i % 8]
        rows.append(kg_row(f"synthetic_{prefix}{i:03d}", str(p), f"a {colour} {SHAPES[i % 3]} on a plain background",
                           sensitive={"gender": "female"} if i % 5 == 0 else {}))
    return rows


@pytest.fixture
def kgaug_small(tmp_path: Path) -> Path:
    """A 16-row kgaug output folder with drawn JPEG/PNG images, in two parquet parts."""
    return write_kgaug(tmp_path / "kg", synthetic_rows(tmp_path / "imgs", 16), parts=2)


SHARD_ARGS = ["--model", "kgclip-tiny-64", "--clusters", "3", "--knn", "2", "--samples-per-shard", "5",
              "--seed", "7", "--batch-size", "8", "--cluster-on", "image", "--quiet"]


@pytest.fixture
def kg():
    """The builders above, for tests (conftest modules are not importable under importlib mode)."""
    import types

    return types.SimpleNamespace(draw_image=draw_image, kg_row=kg_row, write_kgaug=write_kgaug,
                                 synthetic_rows=synthetic_rows, SHARD_ARGS=list(SHARD_ARGS))
