"""Pass 2 of `kgaug build`: one table row per spilled image graph (pseudo-captions + negatives),
in one process or several. Rows come back in input order and depend only on (inputs, seed, key),
so the bytes are the same whatever the number of workers."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from itertools import islice
from pathlib import Path

from kgaug import lexicon
from kgaug.captions import caption_from_dict, pseudo_captions
from kgaug.evidence import Evidence
from kgaug.kg import KG
from kgaug.negatives import Generator
from kgaug.report import Report
from kgaug.scene_graph import SceneGraph

CHUNK = 128
PARALLEL_MIN_ROWS = 2000  # below this, starting processes costs more than it saves

def _describable_view(graph: SceneGraph, kg: KG) -> SceneGraph:
    """The graph with only attributes that read well before a noun (a subset: still all true)."""
    objs = [replace(o, attributes=[a for a in o.attributes if kg.describable(a)]) for o in graph.objects
            if not lexicon.is_not_object(o.name)]
    kept = {o.id for o in objs}
    return SceneGraph(objs, [r for r in graph.relations if r.subject in kept and r.object in kept])


def _row(line: dict, kg: KG, gen: Generator, cfg, report: Report) -> dict:
    graph = SceneGraph.from_json(line["graph"])
    rng = random.Random(f"{cfg.seed}:{line['key']}")
    pseudo = pseudo_captions(_describable_view(graph, kg), cfg.pseudo_captions, rng)
    human = [caption_from_dict(d) for d in line["parsed"]]
    ev = Evidence(graph, kg, set(line["words"]))
    negs = gen.for_image(human + pseudo, ev, rng) if cfg.negatives_per_type > 0 else []
    report.counts["pseudo_captions"] += len(pseudo)
    report.counts["hard_negatives"] += len(negs)
    if graph.objects:
        report.counts["images_with_objects"] += 1
        report.counts["images_with_pseudo_captions"] += bool(pseudo)
    for n in negs:
        report.negatives[n.type] += 1
    return {
        "key": line["key"], "image": line["image"], "source": line["source"], "captions": line["captions"],
        "pseudo_captions": [{"text": c.text, "facts": c.facts(), "style": c.style} for c in pseudo],
        "hard_negatives": [n.row() for n in negs],
        "scene_graph": line["graph"],
        "sensitive": sorted(line["sensitive"].items()),
        "license": line["license"],
    }



_STATE: dict = {}  # set before forking: workers inherit the KG and config copy-on-write


def _work(lines: list[str]) -> tuple[list[dict], Counter, Counter, Counter]:
    kg, gen, cfg = _STATE["kg"], _STATE["gen"], _STATE["cfg"]
    report = Report(cfg.source, {})
    before = Counter(gen.rejected)
    rows = [_row(json.loads(t), kg, gen, cfg, report) for t in lines]
    rejected = Counter(gen.rejected)
    rejected.subtract(before)
    return rows, report.counts, report.negatives, +rejected


def _chunks(path: Path) -> Iterator[list[str]]:
    with open(path, encoding="utf-8") as f:
        while True:
            lines = list(islice(f, CHUNK))
            if not lines:
                return
            yield lines


def generate_rows(spill: Path, kg: KG, gen: Generator, cfg, report: Report, n: int) -> Iterator[dict]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = cfg.workers or (min(cores, 8) if n >= PARALLEL_MIN_ROWS else 1)
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        with open(spill, encoding="utf-8") as f:
            for text in f:
                yield _row(json.loads(text), kg, gen, cfg, report)
        return
    _STATE.update(kg=kg, gen=gen, cfg=cfg)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for rows, counts, negatives, rejected in pool.imap(_work, _chunks(spill)):
                report.counts.update(counts)
                report.negatives.update(negatives)
                gen.rejected.update(rejected)
                yield from rows
    finally:
        _STATE.clear()
