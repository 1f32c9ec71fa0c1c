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
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from kgaug import lexicon
from kgaug.captions import caption_from_dict, pseudo_captions
from kgaug.evidence import Evidence
from kgaug.kg import KG
from kgaug.negatives import Generator
from kgaug.report import Report
from kgaug.scene_graph import SceneGraph, packed_json
from kgaug.table import table_from_rows

CHUNK = 128
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


def _row(blob: bytes, kg: KG, gen: Generator, cfg, report: Report) -> tuple:
    """One table row, as `table_from_rows` takes it (`TABLE_SCHEMA` column order)."""
    line = read_spill(blob)
    graph = SceneGraph.from_tuples(line.graph)
    rng = random.Random(f"{cfg.seed}:{line.key}")
    # Only attributes the KG finds describable (a subset of what captions.describable accepts, so
    # the captions' own test would change nothing: tests/kgaug/test_units.py checks it).
    pseudo = pseudo_captions(_object_view(graph), cfg.pseudo_captions, rng, kg.describable, kg.predicative)
    human = [caption_from_dict(d) for d in line.parsed]
    ev = Evidence(graph, kg, set(line.words))
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
