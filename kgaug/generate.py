"""Pass 2 of `kgaug build`: one table row per spilled image graph (pseudo-captions + negatives),
in one process or several. Rows come back in input order and depend only on (inputs, seed, key),
so the bytes are the same whatever the number of workers."""

from __future__ import annotations

import gc
import marshal
import multiprocessing
import os
import pickle
import random
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from kgaug import fluency, lexicon
from kgaug.captions import caption_from_dict, pseudo_captions
from kgaug.evidence import Evidence
from kgaug.kg import KG
from kgaug.negatives import Generator
from kgaug.report import Report
from kgaug.scene_graph import SceneGraph, packed_json
from kgaug.table import table_from_rows

CHUNK = 128
LM_MAX_TEXTS = 500_000  # captions the refinement's LM is fitted on (the spill's first; enough for bigrams)
LM_MIN_TOKENS = 500  # per half: below this the corpus is too small to say what reads as unlikely
CALIBRATION_IMAGES = 2_000  # images whose negatives say which way each type leans
PARALLEL_MIN_ROWS = 2000  # below this, starting processes costs more than it saves
_LEN = struct.Struct("<I")
_PICKLE_PROTO = pickle.PROTO[0]


class SpillRecord(NamedTuple):
    """What pass 1 keeps of an image for pass 2 (the graph as `SceneGraph.to_tuples`: its JSON for the
    table is written in pass 2, which runs on every core)."""

    key: str
    source: str
    image: str | None
    captions: list[str]
    graph: tuple
    parsed: list[dict]
    words: list[str]
    sensitive: dict[str, str]
    license: str | None


def write_spill(f, rec: SpillRecord) -> None:
    try:
        # marshal writes and reads these plain values (str, int, bool, None, list, tuple, dict) for about
        # 3/4 of pickle's cost (its format is Python's own, fine for a spill this build reads back);
        # anything else it refuses is pickled (`read_spill` tells them apart).
        blob = marshal.dumps(tuple(rec))
    except ValueError:
        blob = pickle.dumps(tuple(rec), protocol=pickle.HIGHEST_PROTOCOL)
    f.write(_LEN.pack(len(blob)))
    f.write(blob)


def read_spill(blob: bytes) -> SpillRecord:
    # A pickle starts with its PROTO opcode, 0x80; a marshal never does (no marshal type code is 0).
    return SpillRecord(*(pickle.loads(blob) if blob[0] == _PICKLE_PROTO else marshal.loads(blob)))


def spill_blobs(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while True:
            head = f.read(_LEN.size)
            if len(head) < _LEN.size:
                return
            yield f.read(_LEN.unpack(head)[0])


def _object_view(graph: SceneGraph) -> SceneGraph:
    """The graph without what `lexicon.is_not_object` names (nor relations to it): what pseudo-captions
    may state."""
    is_not_object = lexicon.is_not_object
    objs = [o for o in graph.objects if not is_not_object(o.name)]
    if len(objs) == len(graph.objects):
        return graph
    kept = {o.id for o in objs}
    return SceneGraph(objs, [r for r in graph.relations if r.subject in kept and r.object in kept])


def _image(line: SpillRecord, kg: KG, cfg, rng: random.Random):
    """An image's graph, pseudo-captions, parsed human captions and evidence."""
    graph = SceneGraph.from_tuples(line.graph)
    # Only attributes the KG finds describable (a subset of what captions.describable accepts, so
    # the captions' own test would change nothing: tests/kgaug/test_units.py checks it).
    pseudo = pseudo_captions(_object_view(graph), cfg.pseudo_captions, rng, kg.describable, kg.predicative)
    human = [caption_from_dict(d) for d in line.parsed]
    return graph, pseudo, human, Evidence(graph, kg, set(line.words))


def fold(key: str) -> int:
    """The half of the corpus an image belongs to (0 or 1, from its key): its captions fit one LM and
    its negatives are scored by the other, so a caption is never scored by a model that has read it."""
    return zlib.crc32(key.encode()) & 1


def fit_lm(spill: Path, limit: int = LM_MAX_TEXTS) -> tuple[tuple[fluency.BigramLM, fluency.BigramLM], int]:
    """The refinement's two LMs, one per half of the images (`fold`), each fitted on the other half's
    captions (human captions; VG: region phrases), in spill order; and how many captions were read."""
    texts: tuple[list[str], list[str]] = ([], [])
    n = 0
    for blob in spill_blobs(spill):
        line = read_spill(blob)
        texts[1 - fold(line.key)].extend(line.captions)  # scored by the other half's model
        n += len(line.captions)
        if n >= limit:
            break
    return (fluency.BigramLM.fit(texts[0]), fluency.BigramLM.fit(texts[1])), n


def calibrate(spill: Path, kg: KG, gen: Generator, cfg, images: int = CALIBRATION_IMAGES,
              floor: float = fluency.FLOOR) -> dict:
    """Which way each type's negatives lean and how strongly, on the spill's first `images` images
    (refinement off, draws of their own, rejections not counted): sets `gen.refine` and returns what
    the report shows of it."""
    gen.refine = {}
    saved = Counter(gen.rejected)
    gaps: dict[str, list[float]] = {}
    try:
        for i, blob in enumerate(spill_blobs(spill)):
            if i >= images:
                break
            line = read_spill(blob)
            rng = random.Random(f"{cfg.seed}:calibrate:{line.key}")
            _, pseudo, human, ev = _image(line, kg, cfg, rng)
            lm = gen.lms[fold(line.key)]
            for n in gen.for_image(human + pseudo, ev, rng):
                gaps.setdefault(n.type, []).append(fluency.gap(lm, n.text, n.caption))
    finally:
        gen.rejected = saved
    gen.refine = fluency.acceptance(gaps, floor)
    names = {-1: "less likely than its caption", 0: "neither", 1: "more likely than its caption"}
    return {kind: {"sample_negatives": len(gs), "less_likely_share": round(sum(g < 0 for g in gs) / len(gs), 4),
                   "leans": names[gen.refine[kind][0]], "keep": round(gen.refine[kind][1], 4)}
            for kind, gs in sorted(gaps.items())}


def _row(blob: bytes, kg: KG, gen: Generator, cfg, report: Report) -> tuple:
    """One table row, as `table_from_rows` takes it (`TABLE_SCHEMA` column order)."""
    line = read_spill(blob)
    rng = random.Random(f"{cfg.seed}:{line.key}")
    graph, pseudo, human, ev = _image(line, kg, cfg, rng)
    if gen.lms:
        gen.lm = gen.lms[fold(line.key)]
    negs = gen.for_image(human + pseudo, ev, rng) if cfg.negatives_per_type > 0 else []
    report.counts["pseudo_captions"] += len(pseudo)
    report.counts["hard_negatives"] += len(negs)
    if graph.objects:
        report.counts["images_with_objects"] += 1
        report.counts["images_with_pseudo_captions"] += bool(pseudo)
    report.negatives.update([n.type for n in negs])
    return (
        line.key, line.image, line.source, line.captions,
        [(c.text, c.facts(), c.style) for c in pseudo],
        [n.row_values() for n in negs],
        packed_json(*line.graph),  # = graph.to_json(): `graph` was made from this form
        sorted(line.sensitive.items()),
        line.license,
    )


@contextmanager
def young_collections_only() -> Iterator[None]:
    """Automatic cyclic GC off; the caller collects the young generations (`gc.collect(1)`) after
    each chunk of rows. Pass 2's memo tables (KG scores, WordNet answers, sameness tests) grow to
    hundreds of thousands of long-lived objects after `gc.freeze()`, and the automatic full
    collections re-scan all of them (~5 % of pass 2 on 5,000 VG images). An image's own objects are
    freed by reference counting, and the few cycles it leaves are young: collecting generations 0-1
    per chunk frees them, so memory stays flat, while the long-lived tables are not scanned again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.collect(1)
        if enabled:
            gc.enable()


_STATE: dict = {}  # set before forking: workers inherit the KG and config copy-on-write


def _after_fork() -> None:
    _STATE["kg"].wn.after_fork()
    gc.disable()  # a worker's life is pass 2: `_work` collects the young generations per chunk


def _table(rows: list[tuple]) -> pa.Table:
    return table_from_rows(rows)


def _work(blobs: list[bytes]) -> tuple[pa.Table, Counter, Counter, Counter]:
    """One chunk in a worker, sent back as an Arrow table: its buffers pickle for a fraction of
    what the row dicts would cost to pickle here and unpickle in the parent."""
    kg, gen, cfg = _STATE["kg"], _STATE["gen"], _STATE["cfg"]
    report = Report(cfg.source, {})
    before = Counter(gen.rejected)
    table = _table([_row(b, kg, gen, cfg, report) for b in blobs])
    rejected = Counter(gen.rejected)
    rejected.subtract(before)
    gc.collect(1)
    return table, report.counts, report.negatives, +rejected


def _chunks(path: Path) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for b in spill_blobs(path):
        chunk.append(b)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def generate_tables(spill: Path, kg: KG, gen: Generator, cfg, report: Report, n: int) -> Iterator[pa.Table]:
    """The table's rows in spill order, as Arrow tables of up to CHUNK rows (`TABLE_SCHEMA`)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = cfg.workers or (min(cores, 8) if n >= PARALLEL_MIN_ROWS else 1)
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        with young_collections_only():
            for blobs in _chunks(spill):
                yield _table([_row(b, kg, gen, cfg, report) for b in blobs])
                gc.collect(1)
        return
    _STATE.update(kg=kg, gen=gen, cfg=cfg)
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_after_fork) as pool:
            for table, counts, negatives, rejected in pool.imap(_work, _chunks(spill)):
                report.counts.update(counts)
                report.negatives.update(negatives)
                gen.rejected.update(rejected)
                yield table
    finally:
        _STATE.clear()
