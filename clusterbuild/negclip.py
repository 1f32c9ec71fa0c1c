"""Export a shard folder as the TSV that NegCLIP's open_clip fork trains on.

NegCLIP's `CsvDataset` (vinid/neg_clip `src/training/data.py`) reads a tab-separated file with
`title` (the caption), `filepath` (an image file), `neg_caption` (a Python-literal list of negative
captions, parsed with `ast.literal_eval`) and `neg_image` (a list of *row indices* of hard negative
images), and draws one of each with `random.choice` — so rows with an empty list would crash it:
rows without hard negatives are left out (counted), and rows whose kNN images were all left out get
the nearest exported row of their own cluster instead.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

from clusterbuild import contract
from kgclip.atomic import atomic_write_bytes

COLUMNS = ("title", "filepath", "neg_caption", "neg_image")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def negclip_rows(samples: list[contract.Sample], paths: list[str]) -> tuple[list[dict], Counter]:
    """Rows of the TSV from samples (in shard order) and the image path of each sample."""
    counts: Counter = Counter()
    keep = []
    for s, p in zip(samples, paths):
        negs = [_one_line(n["text"]) for n in s.meta.get("hard_negatives", []) if n.get("text")]
        if not negs:
            counts["skipped_no_hard_negatives"] += 1
            continue
        keep.append((s, p, negs))
    index = {s.key: i for i, (s, _, _) in enumerate(keep)}
    by_cluster: dict[int, list[int]] = {}
    for i, (s, _, _) in enumerate(keep):
        by_cluster.setdefault(s.cluster_id, []).append(i)
    rows = []
    for i, (s, p, negs) in enumerate(keep):
        neg_image = [index[k] for k in s.meta.get("knn", []) if k in index and index[k] != i]
        if not neg_image:
            mates = [j for j in by_cluster[s.cluster_id] if j != i]
            if mates:
                neg_image = [min(mates, key=lambda j: abs(j - i))]
                counts["neg_image_from_cluster"] += 1
            elif len(keep) > 1:
                neg_image = [(i + 1) % len(keep)]
                counts["neg_image_fallback_next_row"] += 1
            else:
                counts["skipped_single_row"] += 1
                continue
        rows.append({"title": _one_line(s.txt), "filepath": p, "neg_caption": repr(negs),
                     "neg_image": repr(neg_image)})
    counts["rows"] = len(rows)
    return rows, counts


def export(folder: Path, out_tsv: Path, images_dir: Path | None = None) -> Counter:
    """Write `out_tsv`; images are extracted from the tars into `images_dir` (default `<tsv>_images/`)."""
    folder, out_tsv = Path(folder), Path(out_tsv)
    shards = contract.list_shards(folder)
    if not shards:
        raise FileNotFoundError(f"{folder}: no shard tars (NNNNNN.tar); is it a clusterbuild shard folder?")
    images_dir = Path(images_dir) if images_dir else out_tsv.with_name(out_tsv.stem + "_images")
    images_dir.mkdir(parents=True, exist_ok=True)
    samples, paths = [], []
    for s in contract.iter_samples([str(p) for p in shards]):
        path = images_dir / f"{s.key}.{s.image_ext}"  # the reader refused keys that are not plain names
        if path.resolve().parent != images_dir.resolve():
            raise ValueError(f"{folder}: sample key {s.key[:80]!r} would write outside {images_dir}")
        if not path.is_file() or path.stat().st_size != len(s.image):
            atomic_write_bytes(path, s.image)
        s.image = None  # keep memory flat: only the path is needed from here on
        samples.append(s)
        paths.append(str(path.resolve()))
    if len(rows_keys := {s.key for s in samples}) != len(samples):
        raise ValueError(f"{folder}: duplicate keys across shards ({len(samples) - len(rows_keys)})")
    rows, counts = negclip_rows(samples, paths)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writeheader()
    w.writerows(rows)
    out_tsv.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_tsv, buf.getvalue().encode("utf-8"))
    return counts
