"""The local engine: `kgaug build`'s two passes on this machine's cores, in forked worker processes.

It runs the per-image steps of kgaug/image.py (`keep` in pass 1, `table_row` in pass 2) over
partitions of the input and puts the results back in input order, so the report, the KG's counts,
the spill and the table are the same bytes whatever the number of workers:
- pass 1 on a VG `scene_graphs.json`: byte ranges of the file read, counted and spilled apart
  (`pass1_parallel`), merged in file order; caption sources: batches of captions parsed by spaCy in
  workers (`ParsePool`), counted and spilled here; otherwise one sequential read (`pass1`).
- pass 2: chunks of the spill turned into Arrow tables in workers (`pass2`).
Workers are forked (the KG, WordNet and the spaCy pipeline are shared copy-on-write), never spawned.
"""

from __future__ import annotations

import collections
import functools
import gc
import multiprocessing
import os
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from kgaug import image
from kgaug.captions import Caption
from kgaug.engine.spill import chunks, read_spill, spill_blobs, write_spill
from kgaug.kg import KG
from kgaug.negatives import Generator
from kgaug.report import Report
from kgaug.scene_graph import O_NAME
from kgaug.sources import Record, RelativeWhere, Skip
from kgaug.table import table_from_rows

PASS1_PARALLEL_MIN_BYTES = 16 << 20  # ~2000 VG images: below this, starting processes costs more than it saves
PASS1_RANGE_BYTES = 8 << 20  # ranges per worker grow with the input (even load; bounded per-range memory)
PASS2_CHUNK = 128  # images per pass-2 task
PASS2_PARALLEL_MIN_ROWS = 2000  # below this, starting processes costs more than it saves


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class Beside:
    """Start-up work for this process while pass 1 runs in forked workers, which never need it: run in
    a thread once they are forked (`start`), or here and now by `join` when nothing started it (the
    sequential pass 1). `join` re-raises the work's error, and comes before pass 2 forks its workers
    (a fork must not copy a thread in the middle of its work)."""

    def __init__(self, *jobs) -> None:
        self.jobs = jobs
        self.started = False
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        self.started = True
        self.thread = threading.Thread(target=self._run, name="kgaug-start-up", daemon=True)
        self.thread.start()

    def settle(self) -> None:
        """Wait for a started thread (its error, if any, is kept for `join`): also when pass 1 failed,
        so no thread outlives the build (a later fork in this process must not copy it)."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None

    def _run(self) -> None:
        try:
            for job in self.jobs:
                job()
        except BaseException as e:  # re-raised by join, in the caller's thread
            self.error = e

    def join(self) -> None:
        if not self.started:
            self.started = True
            self._run()
        self.settle()
        error, self.error = self.error, None
        if error is not None:
            raise error


def load_pyarrow_pandas() -> None:
    """pyarrow imports pandas (when installed) on its first conversion of Python values, ~0.4 s: done
    once here, or each pass-2 worker would do it again."""
    pa.array([""])


# -- pass 1, one stream (caption batches parsed in workers) ---------------------------------------------

_PARSE: dict = {}  # set before forking: parse workers inherit the loaded spaCy pipeline


def _parse_batch(records: list[Record]) -> tuple[list[tuple[Record, list[Caption]]], Report]:
    """One batch parsed in a worker; its skips and counts come back in a report of their own."""
    parser: image.CaptionParser = _PARSE["parser"]
    parser.report = Report(parser.report.source, {})  # this process's copy
    return list(parser.run(records)), parser.report


class InOrderPool:
    """Caption batches parsed elsewhere (`_send` a batch, `_get` its result), taken back in submission
    order: each batch is the one the sequential path would parse, so the parses, the report and the
    spill are the same bytes. At most `depth` batches wait: bounded memory, no idle worker."""

    def __init__(self, depth: int) -> None:
        self.inflight: collections.deque = collections.deque()
        self.depth = depth

    def _send(self, records: list[Record]):
        raise NotImplementedError

    def _get(self, handle) -> tuple:
        raise NotImplementedError

    def submit(self, records: list[Record], skips: list[Skip]) -> Iterator[tuple]:
        """Queue a batch (with the reader's skips met while it was gathered, reported before it as a
        sequential read would); yield (skips, parsed pairs, report) of the batches due."""
        self.inflight.append((skips, self._send(records)))
        while len(self.inflight) > self.depth:
            yield self._take()

    def drain(self) -> Iterator[tuple]:
        while self.inflight:
            yield self._take()

    def _take(self) -> tuple:
        skips, handle = self.inflight.popleft()
        return (skips, *self._get(handle))


class ParsePool(InOrderPool):
    """Caption batches parsed by spaCy in forked workers (the pipeline is loaded once, in the parent,
    and shared copy-on-write). Parsing is most of a caption source's time; reading, counting and
    spilling stay here, beside the workers."""

    def __init__(self, parser: image.CaptionParser, workers: int) -> None:
        super().__init__(2 * workers)
        _PARSE["parser"] = parser
        self.pool = multiprocessing.get_context("fork").Pool(workers)

    def _send(self, records: list[Record]):
        return self.pool.apply_async(_parse_batch, (records,))

    def _get(self, handle) -> tuple:
        return handle.get()

    def close(self) -> None:
        self.pool.terminate()
        _PARSE.clear()


class _Pass1:
    """One sequential read: every record kept (`image.keep`) into the spill; caption records parsed
    in batches first, by a parse pool once a whole batch shows the workers are worth starting
    (`parse_pool(parser, workers)`, by default a `ParsePool` of forked workers)."""

    def __init__(self, cfg, kg: KG, report: Report, f, parse_pool=None, workers: int = 0) -> None:
        self.cfg, self.kg, self.report, self.f = cfg, kg, report, f
        self.parser: image.CaptionParser | None = None
        self.pool = None
        self.parse_pool = parse_pool
        self.workers = workers or cfg.workers or min(cores(), 8)
        self.pending: list[Record] = []
        self.held: list[Skip] = []  # with a pool: reader skips since the last batch, reported in order with it
        self.n = 0

    def keep(self, rec: Record, caps: list[Caption] | None) -> None:
        line = image.keep(rec, caps, self.kg, self.report)
        if line is not None:
            write_spill(self.f, line)
            self.n += 1

    def skip(self, s: Skip) -> None:
        if self.pool is not None:
            self.held.append(s)
        else:
            self.report.skip(s.where, s.reason)

    def parse_later(self, rec: Record) -> None:
        if self.parser is None:  # loaded once the input has proved readable
            self.parser = image.CaptionParser(self.cfg.spacy_model, self.cfg.batch_size, self.report)
        self.pending.append(rec)
        if len(self.pending) >= max(8, self.cfg.batch_size // 4):
            if self.pool is None and self.workers > 1 and (self.parse_pool is not None or can_fork()):
                make = self.parse_pool or ParsePool
                self.pool = make(self.parser, self.workers)  # a whole batch: worth the workers
            self.flush()

    def flush(self) -> None:
        if self.pending and self.pool is not None:
            self._kept_batches(self.pool.submit(self.pending, self.held))
            self.held = []
        elif self.pending and self.parser is not None:
            for rec, caps in self.parser.run(self.pending):
                self.keep(rec, caps)
        self.pending = []

    def finish(self) -> None:
        self.flush()
        if self.pool is not None:
            self._kept_batches(self.pool.drain())
        for s in self.held:  # after the last batch
            self.report.skip(s.where, s.reason)
        self.held = []

    def _kept_batches(self, done: Iterable[tuple]) -> None:
        for skips, pairs, rep in done:
            for s in skips:
                self.report.skip(s.where, s.reason)
            self.report.merge(rep)
            for rec, caps in pairs:
                self.keep(rec, caps)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def pass1(cfg, read: Callable[[], Iterable[Record | Skip]], kg: KG, report: Report, spill: Path, bar,
          beside: Callable[[], None] | None = None, parse_pool=None, workers: int = 0) -> int:
    """Read, count and spill every record; the number of images kept. `read()`: the source's records.
    `beside`: work for this process while pass 1 runs in forked workers (started after they are
    forked; not called on the sequential path). `parse_pool(parser, workers)`: what parses caption
    batches (another engine's; default: forked workers), `workers` of them."""
    parallel = parallel_plan(cfg) if parse_pool is None else None
    if parallel is not None:
        return pass1_parallel(kg, report, spill, bar, *parallel, beside=beside)
    needs_parse = cfg.source in ("coco", "captions", "webdataset")
    with open(spill, "wb") as f:
        run = _Pass1(cfg, kg, report, f, parse_pool, workers)
        try:
            for item in read():
                if isinstance(item, Skip):
                    run.skip(item)
                    continue
                report.counts["records_read"] += 1
                bar.advance()
                if needs_parse:
                    run.parse_later(item)
                else:
                    run.keep(item, None)
                if cfg.limit is not None and report.counts["records_read"] >= cfg.limit:
                    break
            run.finish()
        finally:
            run.close()
    return run.n


# -- pass 1 in forked workers, one byte range of scene_graphs.json per task ----------------------------


def reads_in_ranges(cfg) -> bool:
    """Whether pass 1 can read this input in byte ranges: one VG `scene_graphs.json`, no --limit, no
    region captions (those are read in lockstep with the graphs)."""
    if cfg.source not in ("vg", "synthetic") or cfg.limit is not None or cfg.vg_dir is None:
        return False
    vg = Path(cfg.vg_dir)
    return (vg / "scene_graphs.json").is_file() and not (
        cfg.region_captions and (vg / "region_descriptions.json").exists())


def parallel_plan(cfg, workers: int | None = None):
    """(skips before the first record, plan, workers) when pass 1 runs over byte ranges; else None
    (sequential: other sources, --limit, split VG files, region captions, one worker, no fork).
    `workers`: how many run at once (default: `--workers`, else one per core for large inputs)."""
    if not reads_in_ranges(cfg):
        return None
    size = (Path(cfg.vg_dir) / "scene_graphs.json").stat().st_size
    if workers is None:
        if not can_fork():
            return None
        workers = cfg.workers or (min(cores(), 8) if size >= PASS1_PARALLEL_MIN_BYTES else 1)
    if workers <= 1:
        return None
    from kgaug.build import sensitive_option
    from kgaug.sources.vg import plan_parts

    ranges = max(4 * workers, -(-size // PASS1_RANGE_BYTES))
    planned = plan_parts(cfg.vg_dir, cfg.images, cfg.source, sensitive_option(cfg), cfg.region_captions, ranges)
    if planned is None or len(planned[1].starts) < 2:
        return None
    return (*planned, workers)


@dataclass
class RangeResult:
    index: int
    end_range: int | None  # the range this one stopped at (None: it read to the end of the file)
    end_char: int  # characters from this range's start to there
    items: int  # array items read (positions in skip messages of later ranges count them)
    report: Report
    counts: dict
    spill: str


def range_spill(spill: Path, index: int) -> Path:
    return spill.with_name(f"{spill.name}.{index:05d}")


def pass1_range(plan, spill: Path, index: int) -> RangeResult:
    """Pass 1 over one byte range of `scene_graphs.json`: its images kept into a spill file of its own,
    its counts and report returned (a task of any engine)."""
    from kgaug.jsonstream import Part
    from kgaug.sources.vg import read_part

    part = Part(plan.starts, index)
    report = Report(plan.source, {})
    counts = KG()
    path = range_spill(spill, index)
    with open(path, "wb") as f:
        for item in read_part(plan, part):
            if isinstance(item, Skip):
                report.skip(item.where, item.reason)
                continue
            report.counts["records_read"] += 1
            line = image.keep(item, None, counts, report, prune=False)
            if line is not None:
                write_spill(f, line)
    return RangeResult(index, part.end_range, part.end_char, part.items, report, counts.corpus_counts(), str(path))


_P1: dict = {}  # set before forking: workers inherit the plan


def _pass1_range_forked(index: int) -> RangeResult:
    return pass1_range(_P1["plan"], _P1["spill"], index)


def _spilled_names(path: Path) -> Iterator[list[str]]:
    """Object names (graph order) of each image in a spill file."""
    for blob in spill_blobs(path):
        yield [o[O_NAME] for o in read_spill(blob).graph[0]]


def merge_ranges(kg: KG, report: Report, spill: Path, bar, skips: list[Skip], plan,
                 results: Iterable[RangeResult]) -> int:
    """The ranges' results, taken in range order, merged into one report, one KG count and one spill:
    the same as one sequential read. A range whose start was not a real record boundary is detected by
    the range before it, which then reads on (its results replace the later ranges')."""
    for s in skips:
        report.skip(s.where, s.reason)
    n, want, items_before, chars_before = 0, 0, 0, 0

    def where(w) -> str:
        return w.absolute(items_before, chars_before) if isinstance(w, RelativeWhere) else w

    try:
        with open(spill, "wb") as out:
            for res in results:
                path = Path(res.spill)
                if res.index == want:
                    report.merge(res.report, where)
                    kg.merge_counts(res.counts, functools.partial(_spilled_names, path))
                    n += res.report.counts["images"]
                    bar.advance(res.report.counts["records_read"])
                    with open(path, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 20)
                    items_before += res.items
                    chars_before += res.end_char
                    want = res.end_range
                path.unlink()
                if want is None:
                    break
    finally:
        for k in range(len(plan.starts)):
            range_spill(spill, k).unlink(missing_ok=True)
    return n


def pass1_parallel(kg: KG, report: Report, spill: Path, bar, skips: list[Skip], plan, workers: int,
                   beside=None) -> int:
    """Ranges read in forked workers, merged here in file order (`merge_ranges`)."""
    _P1.update(plan=plan, spill=spill)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.imap(_pass1_range_forked, range(len(plan.starts)))
            if beside is not None:  # the workers are forked: a thread here cannot be copied into them
                beside()
            return merge_ranges(kg, report, spill, bar, skips, plan, results)
    finally:
        _P1.clear()


# -- pass 2: one table row per spilled image ---------------------------------------------------------


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


def rows_table(blobs: list[bytes], kg: KG, gen: Generator, cfg, report: Report) -> pa.Table:
    """A chunk of spilled images as table rows (`TABLE_SCHEMA`)."""
    return table_from_rows([image.table_row(read_spill(b), kg, gen, cfg, report) for b in blobs])


_STATE: dict = {}  # set before forking: workers inherit the KG and config copy-on-write


def _after_fork() -> None:
    _STATE["kg"].wn.after_fork()
    gc.disable()  # a worker's life is pass 2: `_work` collects the young generations per chunk


def _work(blobs: list[bytes]) -> tuple[pa.Table, Counter, Counter, Counter]:
    return chunk_rows(blobs, _STATE["kg"], _STATE["gen"], _STATE["cfg"])


def chunk_rows(blobs: list[bytes], kg: KG, gen: Generator, cfg) -> tuple[pa.Table, Counter, Counter, Counter]:
    """One chunk in a worker (of any engine), sent back as an Arrow table (its buffers pickle for a
    fraction of what the row dicts would cost) with its report counts and rejections."""
    report = Report(cfg.source, {})
    before = Counter(gen.rejected)
    table = rows_table(blobs, kg, gen, cfg, report)
    rejected = Counter(gen.rejected)
    rejected.subtract(before)
    gc.collect(1)
    return table, report.counts, report.negatives, +rejected


def merge_chunks(results: Iterable[tuple], gen: Generator, report: Report) -> Iterator[pa.Table]:
    """Chunks' results in spill order: their counts into the report, their tables yielded."""
    for table, counts, negatives, rejected in results:
        report.counts.update(counts)
        report.negatives.update(negatives)
        gen.rejected.update(rejected)
        yield table


def pass2(spill: Path, kg: KG, gen: Generator, cfg, report: Report, n: int) -> Iterator[pa.Table]:
    """The table's rows in spill order, as Arrow tables of up to PASS2_CHUNK rows (`TABLE_SCHEMA`)."""
    workers = cfg.workers or (min(cores(), 8) if n >= PASS2_PARALLEL_MIN_ROWS else 1)
    if workers <= 1 or not can_fork():
        with young_collections_only():
            for blobs in chunks(spill, PASS2_CHUNK):
                yield rows_table(blobs, kg, gen, cfg, report)
                gc.collect(1)
        return
    _STATE.update(kg=kg, gen=gen, cfg=cfg)
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_after_fork) as pool:
            yield from merge_chunks(pool.imap(_work, chunks(spill, PASS2_CHUNK)), gen, report)
    finally:
        _STATE.clear()
