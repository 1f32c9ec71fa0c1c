"""From kgaug rows + clusters + kNN to contract samples, and the resumable shard writer.

`make_plan` (pure) fixes everything a shard's bytes depend on: which rows are written, in which
order (samples of one cluster contiguous, cluster order shuffled by the seed), their cluster ids,
kNN keys and near-duplicates. `write_shards` then writes shard after shard with `shardio.write_shard`
(temp file + rename); shards already present under their final name are skipped, so a rerun after a
crash finishes the job with bytes identical to an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clusterbuild import contract, images, shardio
from kgclip.atomic import atomic_write_json

PLAN_FILE = "_plan.json"


@dataclass
class Plan:
    order: list[int]  # table row indices, in shard order
    cluster_id: dict[int, int]  # row -> cluster
    knn: dict[int, list[int]]  # row -> nearest other rows (written rows only)
    near_duplicates: dict[int, list[int]]  # row -> the knn rows above the duplicate threshold
    skipped: dict[int, str] = field(default_factory=dict)  # row -> reason
    weights: dict[int, float] = field(default_factory=dict)  # row -> weight (absent = 1.0)

    def shards(self, samples_per_shard: int) -> list[list[int]]:
        o = self.order
        return [o[i:i + samples_per_shard] for i in range(0, len(o), samples_per_shard)]

    def digest(self, keys: Sequence[str], extra: dict) -> str:
        h = hashlib.sha256()
        h.update(json.dumps(extra, sort_keys=True).encode())
        for r in self.order:
            h.update(json.dumps([keys[r], self.cluster_id[r], [keys[j] for j in self.knn.get(r, [])],
                                 [keys[j] for j in self.near_duplicates.get(r, [])],
                                 self.weights.get(r, 1.0)]).encode())
        return h.hexdigest()


def primary_caption(row: dict) -> str | None:
    """txt: the first human caption, else the first pseudo-caption."""
    for c in row.get("captions") or []:
        if c and c.strip():
            return c
    for p in row.get("pseudo_captions") or []:
        if p and (p.get("text") or "").strip():
            return p["text"]
    return None


def eligible(rows: Sequence[dict], image_status: Sequence[str]) -> tuple[list[int], dict[int, str]]:
    """Rows that can become shard samples, and the reason for every other row."""
    ok: list[int] = []
    skipped: dict[int, str] = {}
    seen: set[str] = set()
    for i, (row, status) in enumerate(zip(rows, image_status)):
        key = row.get("key")
        if contract.check_key(key):
            skipped[i] = "invalid_key"
        elif key in seen:
            skipped[i] = "duplicate_key"
        elif status:
            skipped[i] = status
        elif primary_caption(row) is None:
            skipped[i] = "no_caption"
        else:
            ok.append(i)
        if isinstance(key, str):
            seen.add(key)
    return ok, skipped


def make_plan(rows_ok: Sequence[int], assign: np.ndarray, knn_index: np.ndarray, near_dup: np.ndarray,
              seed: int, skipped: dict[int, str] | None = None) -> Plan:
    """Order `rows_ok` (with per-row cluster `assign`, kNN positions into `rows_ok`) for writing."""
    rows_ok = list(rows_ok)
    assign = np.asarray(assign)
    clusters = np.unique(assign)
    perm = np.random.default_rng(seed).permutation(clusters)
    order = [rows_ok[p] for c in perm for p in np.flatnonzero(assign == c)]
    knn = {rows_ok[p]: [rows_ok[j] for j in knn_index[p] if j >= 0] for p in range(len(rows_ok))}
    dups = {rows_ok[p]: [rows_ok[j] for j, d in zip(knn_index[p], near_dup[p]) if j >= 0 and d]
            for p in range(len(rows_ok))}
    cid = {rows_ok[p]: int(assign[p]) for p in range(len(rows_ok))}
    return Plan(order, cid, knn, dups, dict(skipped or {}))


def _finite(v: Any) -> Any:
    return v if not isinstance(v, float) or math.isfinite(v) else None


def hard_negatives(row: dict) -> tuple[list[dict], int]:
    """The row's negatives as contract dicts (all kgaug fields kept), and how many were invalid."""
    out, bad = [], 0
    for n in row.get("hard_negatives") or []:
        if not n or n.get("type") not in contract.NEGATIVE_TYPES or not isinstance(n.get("text"), str):
            bad += 1
            continue
        d = {k: _finite(v) for k, v in n.items()}
        for k in contract.HARD_NEGATIVE_FIELDS:
            d.setdefault(k, None)
        out.append(d)
    return out, bad


def make_sample(row: dict, img: images.PreparedImage, cluster_id: int, knn_keys: list[str],
                dup_keys: list[str], weight: float = 1.0) -> tuple[contract.Sample, int]:
    """One contract sample from a kgaug row (and the number of invalid negatives dropped)."""
    negs, bad = hard_negatives(row)
    pseudo = [{"text": p["text"], "facts": list(p.get("facts") or []), "style": p.get("style")}
              for p in row.get("pseudo_captions") or [] if p and p.get("text")]
    graph = row.get("scene_graph")
    try:
        graph = json.loads(graph) if isinstance(graph, str) and graph else {}
    except ValueError:
        graph = {"unparsed": graph}
    meta = contract.make_meta(
        key=row["key"], source=row.get("source") or "unknown",
        captions=[c for c in row.get("captions") or [] if isinstance(c, str)],
        pseudo_captions=pseudo, hard_negatives=negs, cluster_id=cluster_id, knn=knn_keys,
        sensitive={str(k): v for k, v in (row.get("sensitive") or {}).items()}, weight=weight,
        near_duplicates=dup_keys, image=row.get("image"), scene_graph=graph if isinstance(graph, dict) else {},
        license=row.get("license"), width=img.width, height=img.height,
    )
    return contract.Sample(row["key"], img.data, img.ext, primary_caption(row) or "", meta), bad


def clean_temp_files(out: Path) -> int:
    """Remove hidden temp files a killed run left behind (`.<name>.tmp-<pid>`)."""
    n = 0
    for p in Path(out).glob(f"{contract.TMP_PREFIX}*{contract.TMP_SUFFIX}-*"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def check_or_claim(out: Path, digest: str, overwrite: bool) -> None:
    """Refuse to mix shards of two different plans in one folder (unless `overwrite`)."""
    out = Path(out)
    plan_file = out / PLAN_FILE
    old = None
    if plan_file.is_file():
        try:
            old = json.loads(plan_file.read_text()).get("digest")
        except ValueError:
            old = None
    existing = [p for p in out.iterdir() if contract.SHARD_RE.match(p.name)] if out.is_dir() else []
    if old != digest and (existing or old is not None):
        if not overwrite:
            raise FileExistsError(
                f"{out} already holds a shard set from other inputs or options "
                f"({len(existing)} shards); use --overwrite or another --out folder")
        for p in out.iterdir():
            if p.is_file() and (contract.SHARD_RE.match(p.name) or p.name.endswith((contract.STATS_SUFFIX, contract.PARQUET_SUFFIX))
                                or p.name in (contract.SIZES_FILE, contract.INFO_FILE, PLAN_FILE)):
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(plan_file, {"digest": digest})


def write_shards(out: Path, rows: Sequence[dict], plan: Plan, samples_per_shard: int,
                 max_side: int = images.DEFAULT_MAX_SIDE, max_pixels: int = images.DEFAULT_MAX_PIXELS,
                 with_cls: bool = True, progress: bool = True,
                 log: Callable[[str], None] = print) -> dict[str, int]:
    """Write every shard of `plan` not already in `out`; then `sizes.json`. Returns sizes."""
    from kgclip.progress import progress_bar

    out = Path(out)
    keys = [r.get("key") for r in rows]
    sizes: dict[str, int] = {}
    done = 0
    shards = plan.shards(samples_per_shard)
    with progress_bar("shards", len(shards), progress, unit="tars") as bar:
        for index, members in enumerate(shards):
            name = contract.shard_name(index)
            sizes[name] = len(members)
            if (out / name).is_file() and (out / contract.stats_name(name)).is_file() and (out / contract.parquet_name(name)).is_file():
                done += 1
                bar.advance(1)
                continue  # written completely by an earlier run (the tar is renamed into place last)
            samples, reencoded, bad_negs = [], Counter(), 0
            for r in members:
                row = rows[r]
                try:
                    img = images.prepare(row.get("image"), max_side, max_pixels)
                except images.BadImage as e:
                    raise RuntimeError(f"{row.get('image')} (row {row['key']}): {e} — it was readable when "
                                       "embedded; did the file change? rerun with --overwrite") from e
                if img.reencoded:
                    reencoded[_reencode_label(img.why)] += 1
                s, bad = make_sample(row, img, plan.cluster_id[r], [keys[j] for j in plan.knn.get(r, [])],
                                     [keys[j] for j in plan.near_duplicates.get(r, [])], plan.weights.get(r, 1.0))
                samples.append(s)
                bad_negs += bad
            stats = {"clusters": sorted({plan.cluster_id[r] for r in members}),
                     "reencoded": dict(sorted(reencoded.items())), "hard_negatives_dropped": bad_negs}
            try:
                shardio.write_shard(out, index, samples, with_cls=with_cls, stats_extra=stats)
            except OSError as e:
                msg = (f"writing shard {out / name} failed: {e.strerror or e}; no partial shard is left under "
                       "a final name; free space or fix permissions and rerun to resume")
                raise (OSError(e.errno, msg) if e.errno else OSError(msg)) from e
            bar.advance(1)
    if done:
        log(f"resumed: {done} of {len(shards)} shards were already complete")
    shardio.write_sizes(out, sizes)
    return sizes


def _reencode_label(why: str) -> str:
    first = why.split(",")[0].strip()
    return "too_large" if first.startswith("side") else first.replace(" ", "_")


def shard_totals(out: Path, shard_names: Sequence[str]) -> dict:
    """Sums of the per-shard `_stats.json` extras (so a resumed run reports the same totals)."""
    reenc: Counter = Counter()
    dropped = 0
    for name in shard_names:
        st = json.loads((Path(out) / contract.stats_name(name)).read_text())
        reenc.update(st.get("reencoded", {}))
        dropped += int(st.get("hard_negatives_dropped", 0))
    return {"reencoded": dict(sorted(reenc.items())), "reencoded_total": sum(reenc.values()),
            "hard_negatives_dropped": dropped}
