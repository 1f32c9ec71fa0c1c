"""`kgaug build`: read a source, build the KG, write pseudo-captions and hard negatives as parquet.

Two passes so every negative is scored against the whole corpus's counts, while memory stays
bounded: pass 1 streams the source (parsing captions once), counts into the KG and spills each
image's compact graph to a spill file in the output folder (length-prefixed marshal records: no JSON
encode/decode round trip between the passes); pass 2 streams that spill and writes the table parts. Per-image randomness is seeded by (seed, key), so output bytes do not
depend on anything but the inputs and the seed.

Both passes run in forked workers on large inputs. Pass 1 does for `scene_graphs.json` (without region
captions): byte ranges of the file are read, counted and spilled apart, then merged in file order, so
the report, the KG's counters (values and key order) and the spill equal a sequential read's.
"""

from __future__ import annotations

import collections
import functools
import gc
import json
import multiprocessing
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from kgaug import lexicon
from kgaug.captions import Caption, caption_to_dict
from kgaug.fluency import FLOOR
from kgaug.generate import (
    LM_MIN_TOKENS,
    SpillRecord,
    calibrate,
    fit_lm,
    generate_tables,
    read_spill,
    spill_blobs,
    write_spill,
)
from kgaug.kg import KG
from kgaug.negatives import TYPES, Generator
from kgaug.report import Report
from kgaug.rewrite import RewriteConfig, Rewriter, rewrite_parts
from kgaug.scene_graph import GraphBuilder, SceneGraph
from kgaug.sources import InputError, Record, RelativeWhere, Skip
from kgaug.summary import report_page
from kgaug.table import PART_PATTERN, REPORT_FILE, TABLE_DIR, TABLE_SCHEMA
from kgaug.vgmeta import VGMeta
from kgaug.wordnet import WordNet
from kgclip.progress import progress_bar

SOURCES = ("vg", "synthetic", "coco", "captions", "webdataset")
KG_FILE = "kg.json"
SPILL = ".graphs.spill.tmp"


@dataclass
class BuildConfig:
    source: str
    out: Path
    vg_dir: Path | None = None
    images: Path | None = None
    captions: Path | None = None
    shards: str | None = None
    image_column: str | None = None
    caption_column: str | None = None
    id_column: str | None = None
    sensitive: Path | None = None
    seed: int = 0
    limit: int | None = None
    spacy_model: str = "en_core_web_sm"
    conceptnet: Path | None = None
    wordnet: bool = True
    negatives_per_type: int = 2
    pseudo_captions: int = 3
    kg: Path | None = None
    rows_per_part: int = 50_000
    batch_size: int = 256
    region_captions: int = 3
    workers: int = 0  # processes for both passes; 0 = one per CPU core for large inputs
    overwrite: bool = False  # replace an earlier build in `out` (else an error before any work)
    refine: bool = True  # adversarial refinement against a text-only LM of the corpus (kgaug/fluency.py)
    refine_floor: float = FLOOR  # the least share of a type's leaning side the refinement keeps
    progress: bool = True
    rewrite: RewriteConfig | None = None  # `--rewrite ollama` (kgaug/rewrite.py); None: off


def _sensitive_option(cfg: BuildConfig) -> dict | None:
    if cfg.sensitive is None:
        return None
    try:
        return json.loads(Path(cfg.sensitive).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"--sensitive {cfg.sensitive}: {e}") from None


def _records(cfg: BuildConfig) -> Iterator[Record | Skip]:
    if cfg.source in ("vg", "synthetic"):
        from kgaug.sources.vg import read_vg

        if cfg.vg_dir is None:
            raise InputError(f"--source {cfg.source} needs --vg-dir")
        return read_vg(cfg.vg_dir, cfg.images, cfg.source, _sensitive_option(cfg), cfg.region_captions)
    if cfg.source == "coco":
        from kgaug.sources.caption_tables import read_coco

        if cfg.captions is None:
            raise InputError("--source coco needs --captions FILE")
        return read_coco(cfg.captions, cfg.images)
    if cfg.source == "captions":
        from kgaug.sources.caption_tables import read_caption_table

        if cfg.captions is None:
            raise InputError("--source captions needs --captions FILE")
        return read_caption_table(cfg.captions, cfg.images, cfg.image_column, cfg.caption_column, cfg.id_column)
    if cfg.source == "webdataset":
        from kgaug.sources.webdataset import read_webdataset

        if not cfg.shards:
            raise InputError("--source webdataset needs --shards PATTERN")
        return read_webdataset(cfg.shards, Path(cfg.out) / "images")
    raise InputError(f"unknown --source {cfg.source!r} (one of {', '.join(SOURCES)})")


def precheck(cfg: BuildConfig) -> None:
    """Fail on an unusable input before the slow start-up (WordNet, spaCy): one clear error."""
    if cfg.source not in SOURCES:
        raise InputError(f"unknown --source {cfg.source!r} (one of {', '.join(SOURCES)})")
    if cfg.source in ("vg", "synthetic"):
        if cfg.vg_dir is None:
            raise InputError(f"--source {cfg.source} needs --vg-dir FOLDER")
        if not Path(cfg.vg_dir).is_dir():
            raise InputError(f"--vg-dir {cfg.vg_dir}: no such folder")
        primary = next((Path(cfg.vg_dir) / n for n in ("scene_graphs.json", "objects.json")
                        if (Path(cfg.vg_dir) / n).exists()), None)
        if primary is None:
            raise InputError(f"{cfg.vg_dir}: neither scene_graphs.json nor objects.json found "
                             "(Visual Genome JSON expected)")
        with open(primary, encoding="utf-8", errors="replace") as f:
            if f.read(4096).lstrip()[:1] != "[":
                raise InputError(f"{primary}: not a JSON array (expected '[' at the start)")
    elif cfg.source in ("coco", "captions"):
        if cfg.captions is None:
            raise InputError(f"--source {cfg.source} needs --captions FILE")
        if not Path(cfg.captions).is_file():
            raise InputError(f"--captions {cfg.captions}: file not found")
    elif not cfg.shards:
        raise InputError("--source webdataset needs --shards PATTERN")
    if cfg.conceptnet is not None and not Path(cfg.conceptnet).is_file():
        raise InputError(f"--conceptnet {cfg.conceptnet}: file not found")
    out = Path(cfg.out)
    earlier = [n for n in PREVIOUS_OUTPUT if (out / n).exists()]
    if earlier and not cfg.overwrite:
        raise InputError(f"{out} already holds a kgaug build ({', '.join(earlier)}); use --overwrite (it removes "
                         "them) or another --out folder")


# What a build writes into OUT. With `--overwrite` an earlier build's files are replaced only once the
# new table is complete (until then a failed run leaves them as they were); the rewrite cache stays.
PREVIOUS_OUTPUT = (TABLE_DIR, REPORT_FILE, "report.html", KG_FILE, "images")


def drop_stale_images(out: Path, source: str) -> int:
    """After a complete build: OUT/images/ files no row of the new table names (an earlier build's)."""
    folder = out / "images"
    if not folder.is_dir():
        return 0
    if source != "webdataset":  # only the webdataset source extracts images into OUT
        n = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
        return n
    from kgaug.table import read_rows

    named = {str(Path(r["image"]).resolve()) for r in read_rows(out, columns=["image"]) if r.get("image")}
    stale = [p for p in folder.iterdir() if p.is_file() and str(p.resolve()) not in named]
    for p in stale:
        p.unlink()
    return len(stale)


def expected_images(cfg: BuildConfig) -> int | None:
    """How many images pass 1 will read, when cheap to know (for the progress bar's ETA)."""
    if cfg.source in ("vg", "synthetic") and cfg.vg_dir is not None:
        from kgaug.jsonstream import iter_array

        idata = Path(cfg.vg_dir) / "image_data.json"
        if idata.exists():
            try:
                n = sum(1 for x in iter_array(idata) if isinstance(x, dict))
            except ValueError:
                return cfg.limit
            return min(n, cfg.limit) if cfg.limit is not None else n
    return cfg.limit


def coreferent_names(captions: list[Caption]) -> dict[str, str]:
    """name -> the name it is merged into: one entity that an image's captions each name differently
    ("Young toddler sitting on toilet ..." and "A young boy sittingon a toilette seat ..." are one child,
    not "a young boy and a young toddler"). Only where every name the captions use from the lexicon's
    `coreferent` groups falls in one group, each caption names at most one of them, and always singular;
    the name most captions use is kept (ties: the group's order, most specific first)."""
    groups = lexicon.coreferent_groups()
    known = {n for g in groups for n in g}
    per_caption = []
    for c in captions:
        names = {np.name for np in c.nps if np.name in known}
        if len(names) > 1 or any(np.plural for np in c.nps if np.name in names):
            return {}
        per_caption.append(names)
    used = set().union(*per_caption) if per_caption else set()
    if len(used) < 2:
        return {}
    group = next((g for g in groups if used <= set(g)), None)
    if group is None:
        return {}
    votes = {n: sum(n in names for names in per_caption) for n in used}
    keep = min(used, key=lambda n: (-votes[n], group.index(n)))
    return {n: keep for n in used if n != keep}


def merge_caption_graphs(captions: list[Caption]) -> SceneGraph:
    """One graph for an image from its parsed captions: objects merged by name, and the names of one
    entity (`coreferent_names`) into one object that keeps each surface name."""
    same = coreferent_names(captions)
    merged = [next(iter(same.values())), *sorted(same)] if same else []  # the kept name first
    b = GraphBuilder()
    for c in captions:
        for np in c.nps:
            oid = same.get(np.name, np.name)
            names = merged if merged and oid == merged[0] else [lexicon.inflect_like(np.name, np.plural)]
            b.add_object(oid, names, None, [a for a, _ in np.atts])
        for r in c.rels:
            b.add_relation(same.get(c.nps[r.subj].name, c.nps[r.subj].name), r.pred,
                           same.get(c.nps[r.obj].name, c.nps[r.obj].name))
    return b.graph


class _Parser:
    """Batches caption records through spaCy (one nlp.pipe call per batch)."""

    def __init__(self, model: str, batch_size: int, report: Report) -> None:
        from kgaug.parse import load_nlp

        self.nlp = load_nlp(model)
        self.batch_size = batch_size
        self.report = report

    def run(self, records: list[Record]) -> Iterator[tuple[Record, list[Caption]]]:
        from kgaug.parse import language_problem, to_caption

        texts, owners = [], []
        for i, rec in enumerate(records):
            for t in rec.captions:
                why = language_problem(t)
                if why:
                    self.report.skip(f"{rec.key} caption {t[:60]!r}", why)
                    continue
                texts.append(t)
                owners.append(i)
        parsed: list[list[Caption]] = [[] for _ in records]
        for owner, doc in zip(owners, self.nlp.pipe(texts, batch_size=self.batch_size), strict=True):
            c = to_caption(doc)
            self.report.counts["captions_parsed"] += 1
            if not c.nps:
                self.report.skip(f"{records[owner].key} caption {doc.text[:60]!r}",
                                 "caption does not parse (no object found)")
                continue
            parsed[owner].append(c)
        for rec, caps in zip(records, parsed, strict=True):
            yield rec, caps


# name -> its surface form (`inflect_like`) if that carries sensitive tags, else None; singular and plural
_TAGGED: tuple[dict[str, str | None], dict[str, str | None]] = ({}, {})
_TAGGED_SIZE = 1 << 17  # names remembered (then it starts afresh)
_UNSEEN = object()


def _tagged_surfaces(objects: tuple) -> list[str]:
    """The surface forms of these objects (`SceneGraph.to_tuples` form) that carry sensitive tags. A text
    without tags adds nothing to `sensitive_tags`, and most object names have none: each name's answer is
    remembered, so an image asks the lexicon only about what does carry tags."""
    out = []
    for o in objects:
        memo = _TAGGED[1] if o[2] else _TAGGED[0]
        s = memo.get(o[1], _UNSEEN)
        if s is _UNSEEN:
            if len(memo) >= _TAGGED_SIZE:
                memo.clear()
            s = lexicon.inflect_like(o[1], o[2])
            s = memo[o[1]] = s if lexicon.sensitive_tags([s]) else None
        if s is not None:
            out.append(s)
    return out


def _emit(rec: Record, caps: list[Caption] | None, f, kg: KG, report: Report, prune: bool = True) -> bool:
    """Count one record into the KG and spill it (False: skipped, with its reason in the report)."""
    if caps is not None:
        if not caps:
            report.skip(f"{rec.key}", "no usable caption (all rejected)")
            return False
        rec.graph = merge_caption_graphs(caps)
        rec.captions = [c.text for c in caps]
    for p in rec.problems:
        report.problem(rec.key, p)
    # The graph's `to_tuples` form is what is counted and spilled (a GraphBuilder's graph holds it as is).
    graph = rec.graph.to_tuples() if rec.graph is not None else None
    if graph is None or (not graph[0] and not rec.captions):
        report.skip(rec.key, "image without objects or captions")
        return False
    kg.add_graph(rec.graph, prune)
    words = sorted({w for c in rec.captions for w in lexicon.clean(c).split(" ")}) if caps else []
    tags = lexicon.sensitive_tags(rec.captions + _tagged_surfaces(graph[0]))
    tags.update(rec.sensitive)
    write_spill(f, SpillRecord(rec.key, rec.source, rec.image, rec.captions, graph,
                               [caption_to_dict(c) for c in caps or []], words, tags, rec.license))
    report.counts["images"] += 1
    if not rec.image:
        report.counts["rows_without_image"] += 1
    return True


_PARSE: dict = {}  # set before forking: parse workers inherit the loaded spaCy pipeline


def _parse_batch(records: list[Record]) -> tuple[list[tuple[Record, list[Caption]]], Report]:
    """One batch parsed in a worker; its skips and counts come back in a report of their own."""
    parser: _Parser = _PARSE["parser"]
    parser.report = Report(parser.report.source, {})  # this process's copy
    return list(parser.run(records)), parser.report


class _ParsePool:
    """Caption batches parsed by spaCy in forked workers (the pipeline is loaded once, in the parent,
    and shared copy-on-write), taken back in submission order: each batch is the one the sequential
    path would parse, so the parses, the report and the spill are the same bytes. Parsing is most of
    a caption source's time; reading, counting and spilling stay here, beside the workers."""

    def __init__(self, parser: _Parser, workers: int) -> None:
        _PARSE["parser"] = parser
        self.pool = multiprocessing.get_context("fork").Pool(workers)
        self.inflight: collections.deque = collections.deque()
        self.depth = 2 * workers  # batches in flight: bounded memory, no idle worker

    def submit(self, records: list[Record], skips: list[Skip]) -> Iterator[tuple]:
        """Queue a batch (with the reader's skips met while it was gathered, reported before it as a
        sequential read would); yield (skips, parsed pairs, report) of the batches due."""
        self.inflight.append((skips, self.pool.apply_async(_parse_batch, (records,))))
        while len(self.inflight) > self.depth:
            yield self._take()

    def drain(self) -> Iterator[tuple]:
        while self.inflight:
            yield self._take()

    def _take(self) -> tuple:
        skips, result = self.inflight.popleft()
        return (skips, *result.get())

    def close(self) -> None:
        self.pool.terminate()
        _PARSE.clear()


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


def _load_pyarrow_pandas() -> None:
    """pyarrow imports pandas (when installed) on its first conversion of Python values, ~0.4 s: done
    once here, or each pass-2 worker would do it again."""
    pa.array([""])


def _pass1(cfg: BuildConfig, kg: KG, report: Report, spill: Path, bar, beside=None) -> int:
    """Read, count and spill every record. `beside`: work for this process while pass 1 runs in
    forked workers (started after they are forked; not called on the sequential path)."""
    parallel = _parallel_plan(cfg)
    if parallel is not None:
        return _pass1_parallel(kg, report, spill, bar, *parallel, beside=beside)
    parser, pool = None, None
    needs_parse = cfg.source in ("coco", "captions", "webdataset")
    workers = cfg.workers or min(_cores(), 8)
    n = 0
    pending: list[Record] = []
    held: list[Skip] = []  # with a pool: reader skips since the last batch, reported in order with it

    def emit_batches(done) -> int:
        k = 0
        for skips, pairs, rep in done:
            for s in skips:
                report.skip(s.where, s.reason)
            report.merge(rep)
            for rec, caps in pairs:
                k += _emit(rec, caps, f, kg, report)
        return k

    with open(spill, "wb") as f:
        try:
            for item in _records(cfg):
                if isinstance(item, Skip):
                    if pool is not None:
                        held.append(item)
                    else:
                        report.skip(item.where, item.reason)
                    continue
                report.counts["records_read"] += 1
                bar.advance()
                if not needs_parse:
                    n += _emit(item, None, f, kg, report)
                else:
                    if parser is None:  # loaded once the input has proved readable
                        parser = _Parser(cfg.spacy_model, cfg.batch_size, report)
                    pending.append(item)
                    if len(pending) >= max(8, cfg.batch_size // 4):
                        if pool is None and workers > 1 and "fork" in multiprocessing.get_all_start_methods():
                            pool = _ParsePool(parser, workers)  # a whole batch: worth the workers
                        if pool is not None:
                            n += emit_batches(pool.submit(pending, held))
                            held = []
                        else:
                            for rec, caps in parser.run(pending):
                                n += _emit(rec, caps, f, kg, report)
                        pending = []
                if cfg.limit is not None and report.counts["records_read"] >= cfg.limit:
                    break
            if pending and pool is not None:
                n += emit_batches(pool.submit(pending, held))
                held = []
            elif pending and parser is not None:
                for rec, caps in parser.run(pending):
                    n += _emit(rec, caps, f, kg, report)
            if pool is not None:
                n += emit_batches(pool.drain())
            for s in held:  # after the last batch
                report.skip(s.where, s.reason)
        finally:
            if pool is not None:
                pool.close()
    return n


# -- pass 1 in forked workers, one byte range of scene_graphs.json per task ----------------------------

PASS1_PARALLEL_MIN_BYTES = 16 << 20  # ~2000 VG images: below this, starting processes costs more than it saves
PASS1_RANGE_BYTES = 8 << 20  # ranges per worker grow with the input (even load; bounded per-range memory)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _parallel_plan(cfg: BuildConfig):
    """(skips before the first record, plan, workers) when pass 1 runs in workers; else None (sequential:
    other sources, --limit, split VG files, region captions, one worker, no fork)."""
    if cfg.source not in ("vg", "synthetic") or cfg.limit is not None or cfg.vg_dir is None \
            or "fork" not in multiprocessing.get_all_start_methods():
        return None
    sg = Path(cfg.vg_dir) / "scene_graphs.json"
    if not sg.is_file():
        return None
    size = sg.stat().st_size
    workers = cfg.workers or (min(_cores(), 8) if size >= PASS1_PARALLEL_MIN_BYTES else 1)
    if workers <= 1:
        return None
    from kgaug.sources.vg import plan_parts

    ranges = max(4 * workers, -(-size // PASS1_RANGE_BYTES))
    planned = plan_parts(cfg.vg_dir, cfg.images, cfg.source, _sensitive_option(cfg), cfg.region_captions, ranges)
    if planned is None or len(planned[1].starts) < 2:
        return None
    return (*planned, workers)


@dataclass
class _RangeResult:
    index: int
    end_range: int | None  # the range this one stopped at (None: it read to the end of the file)
    end_char: int  # characters from this range's start to there
    items: int  # array items read (positions in skip messages of later ranges count them)
    report: Report
    counts: dict
    spill: str


_P1: dict = {}  # set before forking: workers inherit the plan


def _range_spill(spill: Path, index: int) -> Path:
    return spill.with_name(f"{spill.name}.{index:05d}")


def _pass1_range(index: int) -> _RangeResult:
    from kgaug.jsonstream import Part
    from kgaug.sources.vg import read_part

    plan, spill = _P1["plan"], _P1["spill"]
    part = Part(plan.starts, index)
    report = Report(plan.source, {})
    counts = KG()
    path = _range_spill(spill, index)
    with open(path, "wb") as f:
        for item in read_part(plan, part):
            if isinstance(item, Skip):
                report.skip(item.where, item.reason)
                continue
            report.counts["records_read"] += 1
            _emit(item, None, f, counts, report, prune=False)
    return _RangeResult(index, part.end_range, part.end_char, part.items, report, counts.corpus_counts(), str(path))


def _spilled_names(path: Path) -> Iterator[list[str]]:
    """Object names (graph order) of each image in a spill file."""
    for blob in spill_blobs(path):
        yield [o[1] for o in read_spill(blob).graph[0]]


def _pass1_parallel(kg: KG, report: Report, spill: Path, bar, skips: list[Skip], plan, workers: int,
                    beside=None) -> int:
    """Ranges read in workers, merged here in file order: the same report, KG counts and spill as one
    sequential read. A range whose start was not a real record boundary is detected by the range
    before it, which then reads on (its results replace the later ranges')."""
    for s in skips:
        report.skip(s.where, s.reason)
    n, want, items_before, chars_before = 0, 0, 0, 0

    def where(w) -> str:
        return w.absolute(items_before, chars_before) if isinstance(w, RelativeWhere) else w

    _P1.update(plan=plan, spill=spill)
    try:
        with open(spill, "wb") as out, \
                multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.imap(_pass1_range, range(len(plan.starts)))
            if beside is not None:  # the workers are forked: a thread here cannot be copied into them
                beside()
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
        _P1.clear()
        for k in range(len(plan.starts)):
            _range_spill(spill, k).unlink(missing_ok=True)
    return n


def _refinement(spill: Path, kg: KG, gen: Generator, cfg: BuildConfig) -> dict:
    """Fit the corpus LM and calibrate `gen` against it (kgaug/fluency.py); what the report shows."""
    lms, texts = fit_lm(spill)
    tokens = [lm.total for lm in lms]
    info: dict = {"lm_captions": texts, "lm_tokens": sum(tokens)}
    if min(tokens) < LM_MIN_TOKENS:
        info["off"] = f"a half of the corpus has {min(tokens)} caption tokens, fewer than {LM_MIN_TOKENS}"
        return info
    gen.lms = lms
    info["types"] = calibrate(spill, kg, gen, cfg, floor=cfg.refine_floor)
    return info


class PartWriter:
    """Arrow tables (any number of rows each) -> part-NNNNN.parquet files of `rows_per_part` rows,
    written in row groups of ROW_GROUP rows so memory does not grow with the part size. The row
    groups are cut at the same rows however the input tables are sized, and each is written from
    one contiguous table, so the file bytes do not depend on the chunking."""

    ROW_GROUP = 1024

    def __init__(self, folder: Path, rows_per_part: int) -> None:
        self.folder, self.rows_per_part = folder, rows_per_part
        self.part, self.in_part = 0, 0
        self.buf: list[pa.Table] = []
        self.buffered = 0
        self.writer: pq.ParquetWriter | None = None

    def _flush(self) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.folder / PART_PATTERN.format(index=self.part), TABLE_SCHEMA)
        table = pa.concat_tables(self.buf).combine_chunks() if self.buf else TABLE_SCHEMA.empty_table()
        self.writer.write_table(table)
        self.buf, self.buffered = [], 0

    def add(self, table: pa.Table) -> None:
        start = 0
        while start < table.num_rows:
            piece = table.slice(start, min(self.ROW_GROUP - self.buffered, self.rows_per_part - self.in_part))
            start += piece.num_rows
            self.buf.append(piece)
            self.buffered += piece.num_rows
            self.in_part += piece.num_rows
            if self.buffered >= self.ROW_GROUP or self.in_part >= self.rows_per_part:
                self._flush()
            if self.in_part >= self.rows_per_part:
                self.writer.close()
                self.writer, self.part, self.in_part = None, self.part + 1, 0

    def close(self) -> None:
        if self.buf or (self.writer is None and self.part == 0):
            self._flush()  # an empty input still gets one (empty) part with the schema
        if self.writer is not None:
            self.writer.close()


def build(cfg: BuildConfig, console=None) -> Report:
    precheck(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    # Off, the rewrite options are not listed (report.json as before they existed).
    opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()
            if k not in ("progress", "overwrite") and not (k == "rewrite" and v is None)}
    if cfg.rewrite is not None:
        opts["rewrite"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg.rewrite).items()}
    # The LLM server is asked first: if it does not answer, one clear error before any long work.
    rewriter = Rewriter(cfg.rewrite, out) if cfg.rewrite is not None else None
    report = Report(cfg.source, opts)
    t0 = time.perf_counter()
    wn = WordNet(enabled=cfg.wordnet, defer=True)  # checked now; loaded beside pass 1's workers (or after it)
    start_up = Beside(wn.load, _load_pyarrow_pandas)
    vg = VGMeta.from_dir(cfg.vg_dir if cfg.source in ("vg", "synthetic") else None)
    for p in vg.problems:
        report.skip("vg synonym maps", p)
    kg = KG(wn, vg)
    if cfg.kg is not None:
        kg.load_counts(cfg.kg)
    spill = out / SPILL
    # WordNet, the synset maps and (after pass 1) the KG are hundreds of thousands of long-lived
    # objects: keep the cyclic GC from re-scanning them all the time (and from touching forked
    # workers' shared pages). Undone at the end, so repeated builds in one process leak nothing.
    gc.freeze()
    try:
        total = expected_images(cfg) if cfg.progress else cfg.limit
        with progress_bar(f"read {cfg.source}", total, cfg.progress, console) as bar:
            try:
                n = _pass1(cfg, kg, report, spill, bar, beside=start_up.start)
            finally:
                start_up.settle()
        start_up.join()
        if cfg.conceptnet is not None:
            if not Path(cfg.conceptnet).is_file():
                raise InputError(f"--conceptnet {cfg.conceptnet}: file not found")
            kg.add_conceptnet(cfg.conceptnet)
        kg.finalize()
        gc.freeze()
        t1 = time.perf_counter()
        gen = Generator(kg, cfg.negatives_per_type)
        t_refine = 0.0
        if cfg.refine and cfg.negatives_per_type > 0:
            report.extra["refinement"] = _refinement(spill, kg, gen, cfg)
            t_refine = time.perf_counter() - t1
        tmp_dir = out / (TABLE_DIR + ".tmp")
        shutil.rmtree(tmp_dir, ignore_errors=True)
        tmp_dir.mkdir()
        parts = PartWriter(tmp_dir, cfg.rows_per_part)
        with progress_bar("negatives", n, cfg.progress, console) as bar:
            for table in generate_tables(spill, kg, gen, cfg, report, n):
                parts.add(table)
                bar.advance(table.num_rows)
        parts.close()
        if rewriter is not None:
            t_rw = time.perf_counter()
            rewritten = out / (TABLE_DIR + ".rewrite.tmp")
            shutil.rmtree(rewritten, ignore_errors=True)
            try:
                rewrite_parts(tmp_dir, rewritten, rewriter, kg, cfg.seed, cfg.progress, console)
            except BaseException:  # never a partial table: neither folder becomes table/
                shutil.rmtree(rewritten, ignore_errors=True)
                shutil.rmtree(tmp_dir, ignore_errors=True)
                raise
            shutil.rmtree(tmp_dir)
            tmp_dir = rewritten
            report.extra.update(rewriter.summary())
            report.counts["llm_pseudo_captions"] = rewriter.stats["rewrites"]["accepted"]
            if cfg.rewrite is not None and cfg.rewrite.negatives:
                report.counts["llm_negatives"] = rewriter.stats["llm_negatives"]["accepted"]
            t_rw = time.perf_counter() - t_rw
        final, old = out / TABLE_DIR, out / (TABLE_DIR + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():  # an earlier build's table (--overwrite): moved aside, dropped once replaced
            final.replace(old)
        tmp_dir.replace(final)
        shutil.rmtree(old, ignore_errors=True)
        kg.save(out / KG_FILE)
        stale = drop_stale_images(out, cfg.source)
        if stale:
            report.counts["stale_images_removed"] = stale
    finally:
        spill.unlink(missing_ok=True)
        shutil.rmtree(out / (TABLE_DIR + ".tmp"), ignore_errors=True)  # a failed run's partial parts
        gc.unfreeze()
    report.rejections(gen.rejected)
    for kind in TYPES:
        report.negatives.setdefault(kind, 0)
    t2 = time.perf_counter()
    report.counts["rows"] = n
    report.extra["kg"] = {"file": KG_FILE, "nodes": kg.graph.number_of_nodes(), "edges": kg.graph.number_of_edges(),
                          "conceptnet_edges": kg.conceptnet_rows,
                          "conceptnet_skipped": dict(sorted(kg.conceptnet_skipped.items())),
                          "wordnet": wn.enabled, "co_occurrence_prunes": kg.cooc_prunes}
    t_rewrite = t_rw if rewriter is not None else 0.0
    # (the parts add up to the whole: the summary's images/s divides by their sum)
    report.extra["seconds"] = {"read_and_count": round(t1 - t0, 2), "refine": round(t_refine, 2),
                               "generate": round(t2 - t1 - t_refine - t_rewrite, 2)}
    if rewriter is not None:
        report.extra["seconds"]["rewrite"] = round(t_rewrite, 2)
    report.write(out / REPORT_FILE)
    report_page(report, out, cfg.seed)
    return report
