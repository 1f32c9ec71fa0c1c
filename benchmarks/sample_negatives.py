"""Draw hard negatives (or pseudo-captions) from a `kgaug build` table for blind human judging (issue 19,
goal 1; docs/QUALITY.md).

    .venv/bin/python benchmarks/sample_negatives.py OUT_DIR --out docs/quality/NAME.jsonl [--n 100] \
        [--seed 0] [--name NAME] [--image-base DIR] [--types T,...] [--pseudo]

`--pseudo` draws pseudo-captions instead (the positives kgaug adds): stratified by their `style`, the item's
text under `pseudo_caption`, the key's `type` is the style and it holds the caption's `facts`.

Writes two JSONL files:

- `NAME.jsonl`, what a judge sees, one negative per line in a shuffled order: `id`
  (`<name>-<index>`), `key` (the image), `image` (its path, relative to `--image-base` when given, or null), `captions` (the image's human
  captions), `scene_graph` (the row's graph, compact: objects as "attribute … name" strings and
  relations as "subject predicate object" strings; null when the row has none) and `negative` (the
  text to judge). Nothing in it names the type or the caption the negative was edited from.
- `NAME.key.jsonl`, the key: per `id` the `type`, the source `caption` and the edit record
  (`from`, `to`, `fact`, `plausibility`), and where the negative sits in the table (`row`, `index`).

The draw is stratified by type in proportion to how often each type occurs in the table (largest
remainder; ties broken by type order), uniform within a type, and deterministic for a seed.
Judges' labels go beside them as `NAME.labels.jsonl` (one line per id and judge).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clusterbuild.contract import NEGATIVE_TYPES  # noqa: E402
from kgaug.table import read_rows  # noqa: E402

EDIT_FIELDS = ("from", "to", "fact", "plausibility")


# --- pure functions ------------------------------------------------------------------------------

def type_order(types: Iterable[str]) -> list[str]:
    """The types present, in the contract's order, unknown ones after it alphabetically."""
    present = set(types)
    return [t for t in NEGATIVE_TYPES if t in present] + sorted(present - set(NEGATIVE_TYPES))


def largest_remainder(counts: dict[str, int], n: int) -> dict[str, int]:
    """Integer quotas summing to min(n, total), proportional to `counts` (Hamilton's method): each
    type gets floor(n·c/total); the rest go one each to the largest remainders, ties in the order
    of `counts`. A quota never exceeds its count."""
    total = sum(counts.values())
    n = min(n, total)
    if n <= 0:
        return {t: 0 for t in counts}
    exact = {t: n * c / total for t, c in counts.items()}
    quota = {t: int(exact[t]) for t in counts}
    rank = sorted(counts, key=lambda t: (-(exact[t] - quota[t]), list(counts).index(t)))
    for t in rank[: n - sum(quota.values())]:
        quota[t] += 1
    return quota


def stratified_draw(types: Sequence[str], n: int, seed: int) -> list[int]:
    """Indices of a stratified random draw of n items by type, in a shuffled (type-blind) order."""
    rng = np.random.default_rng(seed)
    order = type_order(types)
    by_type = {t: [i for i, x in enumerate(types) if x == t] for t in order}
    quota = largest_remainder({t: len(by_type[t]) for t in order}, n)
    chosen: list[int] = []
    for t in order:
        picks = rng.choice(len(by_type[t]), size=quota[t], replace=False) if quota[t] else []
        chosen.extend(by_type[t][int(j)] for j in sorted(picks))
    return [chosen[int(j)] for j in rng.permutation(len(chosen))]


def compact_graph(scene_graph: str | None) -> dict | None:
    """A row's scene graph for a reader: distinct "attr … name" objects and "subj pred obj" relations."""
    if not scene_graph:
        return None
    g = json.loads(scene_graph)
    objects = g.get("objects") or []
    names = {o.get("id", o.get("name")): o.get("name", "") for o in objects}

    def distinct(items: Iterable[str]) -> list[str]:
        return list(dict.fromkeys(i for i in items if i))

    return {
        "objects": distinct(" ".join([*(o.get("attributes") or []), o.get("name", "")]).strip() for o in objects),
        "relations": distinct(f"{names.get(s, s)} {p} {names.get(o, o)}" for s, p, o in g.get("relations") or []),
    }


def negatives_of(rows: Iterable[dict]) -> list[tuple[dict, int, int]]:
    """Every hard negative of the table as (row, row number, index in the row), in table order."""
    return [(r, ri, ni) for ri, r in enumerate(rows) for ni, _ in enumerate(r.get("hard_negatives") or [])]


def pseudo_of(rows: Iterable[dict]) -> list[tuple[dict, int, int]]:
    """Every pseudo-caption of the table as (row, row number, index in the row), in table order."""
    return [(r, ri, pi) for ri, r in enumerate(rows) for pi, _ in enumerate(r.get("pseudo_captions") or [])]


def relative_image(path: str | None, base: Path | None) -> str | None:
    """The image path relative to `base` when it lies under it (as a POSIX path), else unchanged."""
    if not path or base is None:
        return path
    try:
        return Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return path


def _draw(flat: list[tuple[dict, int, int]], column: str, stratum, describe, name: str, n: int, seed: int,
          image_base: Path | None) -> tuple[list[dict], list[dict]]:
    """Items and key for a stratified draw from `flat` ((row, row number, index in row[column])):
    `stratum(entry)` is what the draw is stratified by, `describe(entry)` gives (item fields, key fields)."""
    picks = stratified_draw([stratum(r[column][i]) for r, _, i in flat], n, seed)
    width = max(3, len(str(max(len(picks) - 1, 0))))
    items, keys = [], []
    for k, pick in enumerate(picks):
        r, ri, i = flat[pick]
        ident = f"{name}-{k:0{width}d}"
        shown, hidden = describe(r[column][i])
        items.append({"id": ident, "key": r["key"], "image": relative_image(r.get("image"), image_base),
                      "captions": list(r.get("captions") or []), "scene_graph": compact_graph(r.get("scene_graph")),
                      **shown})
        keys.append({"id": ident, **hidden, "key": r["key"], "row": ri, "index": i})
    return items, keys


def sample(rows: Iterable[dict], name: str, n: int = 100, seed: int = 0,
           image_base: Path | None = None, types: set[str] | None = None) -> tuple[list[dict], list[dict]]:
    """The judges' items and the key, in the same order (only negatives of `types` when given)."""
    flat = [x for x in negatives_of(rows) if types is None or x[0]["hard_negatives"][x[2]]["type"] in types]
    return _draw(flat, "hard_negatives", lambda neg: neg["type"],
                 lambda neg: ({"negative": neg["text"]},
                              {"type": neg["type"], "caption": neg.get("caption"), **{f: neg.get(f) for f in EDIT_FIELDS}}),
                 name, n, seed, image_base)


def sample_pseudo(rows: Iterable[dict], name: str, n: int = 100, seed: int = 0,
                  image_base: Path | None = None) -> tuple[list[dict], list[dict]]:
    """The judges' items and the key for pseudo-captions, stratified by style."""
    return _draw(pseudo_of(rows), "pseudo_captions", lambda p: str(p.get("style")),
                 lambda p: ({"pseudo_caption": p["text"]}, {"type": str(p.get("style")), "facts": list(p.get("facts") or [])}),
                 name, n, seed, image_base)


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    tmp.replace(path)


def key_path(out: Path) -> Path:
    """`NAME.jsonl` -> `NAME.key.jsonl`."""
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(stem + ".key.jsonl")


# --- CLI -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> tuple[Path, Path]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path, help="a kgaug build output folder")
    ap.add_argument("--out", type=Path, required=True, help="the judges' JSONL (the key goes beside it)")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default=None, help="id prefix (default: --out's name without .jsonl)")
    ap.add_argument("--image-base", type=Path, default=None, help="write image paths relative to this folder")
    ap.add_argument("--types", default=None, help="comma-separated negative types to draw from [all]")
    ap.add_argument("--pseudo", action="store_true", help="draw pseudo-captions instead of hard negatives")
    args = ap.parse_args(argv)
    name = args.name or key_path(args.out).name[: -len(".key.jsonl")]
    types = set(args.types.split(",")) if args.types else None
    if args.pseudo:
        items, keys = sample_pseudo(read_rows(args.out_dir), name, args.n, args.seed, args.image_base)
    else:
        items, keys = sample(read_rows(args.out_dir), name, args.n, args.seed, args.image_base, types)
    write_jsonl(args.out, items)
    write_jsonl(key_path(args.out), keys)
    counts: dict[str, int] = {}
    for k in keys:
        counts[k["type"]] = counts.get(k["type"], 0) + 1
    print(f"{len(items)} {'pseudo-captions' if args.pseudo else 'negatives'} -> {args.out} (key: {key_path(args.out)}); by type: "
          + ", ".join(f"{t} {counts[t]}" for t in type_order(counts)))
    return args.out, key_path(args.out)


if __name__ == "__main__":
    main()
