"""`kgaug build`: read a source, build the KG, write pseudo-captions and hard negatives as parquet.

Two passes so every negative is scored against the whole corpus's counts, while memory stays
bounded: pass 1 streams the source (parsing captions once), counts each image into the KG and spills
what pass 2 needs of it (kgaug/engine/spill.py); pass 2 streams that spill and writes the table
parts. What happens to one image is kgaug/image.py; kgaug/engine/local.py runs it over the corpus
on this machine's cores. Per-image randomness is seeded by (seed, key), so output bytes do not
depend on anything but the inputs and the seed.
"""

from __future__ import annotations

import gc
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from kgaug.engine import local
from kgaug.engine.spill import spill_records
from kgaug.fluency import FLOOR
from kgaug.kg import KG
from kgaug.negatives import TYPES, Generator
from kgaug.refine import refinement
from kgaug.report import Report
from kgaug.rewrite import RewriteConfig, Rewriter, rewrite_parts
from kgaug.sources import InputError, Record, Skip
from kgaug.summary import report_page
from kgaug.table import REPORT_FILE, TABLE_DIR, PartWriter
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
    complete_graphs: bool = False  # each graph lists all a picture shows (the synthetic world): additions need no other evidence
    progress: bool = True
    rewrite: RewriteConfig | None = None  # `--rewrite ollama` (kgaug/rewrite.py); None: off
    engine: str = "local"  # local (this machine's cores) | ray (kgaug/engine/ray_engine.py)
    ray_address: str | None = None  # --engine ray: a running cluster ("auto", "ray://host:port"); None: start one here


def sensitive_option(cfg: BuildConfig) -> dict | None:
    if cfg.sensitive is None:
        return None
    try:
        return json.loads(Path(cfg.sensitive).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"--sensitive {cfg.sensitive}: {e}") from None


def records(cfg: BuildConfig) -> Iterator[Record | Skip]:
    if cfg.source in ("vg", "synthetic"):
        from kgaug.sources.vg import read_vg

        if cfg.vg_dir is None:
            raise InputError(f"--source {cfg.source} needs --vg-dir")
        return read_vg(cfg.vg_dir, cfg.images, cfg.source, sensitive_option(cfg), cfg.region_captions)
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


ENGINES = ("local", "ray")


def precheck(cfg: BuildConfig) -> None:
    """Fail on an unusable input before the slow start-up (WordNet, spaCy): one clear error."""
    if cfg.engine not in ENGINES:
        raise InputError(f"unknown --engine {cfg.engine!r} (one of {', '.join(ENGINES)})")
    if cfg.engine == "ray":
        from kgaug.engine.ray_engine import require_ray

        require_ray()  # installed? (else how to install it)
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


def _options(cfg: BuildConfig) -> dict:
    """The build's options as report.json records them (the rewrite's only when it is on)."""
    opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()
            if k not in ("progress", "overwrite", "engine", "ray_address") and not (k == "rewrite" and v is None)}
    if cfg.rewrite is not None:
        opts["rewrite"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg.rewrite).items()}
    return opts


def _write_table(engine, spill: Path, kg: KG, gen: Generator, cfg: BuildConfig, report: Report, n: int,
                 console) -> Path:
    """Pass 2 into OUT/table.tmp (removed by `build` if anything fails): the folder written."""
    tmp_dir = Path(cfg.out) / (TABLE_DIR + ".tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir()
    parts = PartWriter(tmp_dir, cfg.rows_per_part)
    with progress_bar("negatives", n, cfg.progress, console) as bar:
        for table in engine.pass2(spill, kg, gen, cfg, report, n):
            parts.add(table)
            bar.advance(table.num_rows)
    parts.close()
    return tmp_dir


def _rewrite(tmp_dir: Path, rewriter: Rewriter, kg: KG, cfg: BuildConfig, report: Report, console) -> Path:
    """`--rewrite`: the table in `tmp_dir` rewritten by the LLM into a new folder (never a partial one)."""
    out = Path(cfg.out)
    rewritten = out / (TABLE_DIR + ".rewrite.tmp")
    shutil.rmtree(rewritten, ignore_errors=True)
    try:
        rewrite_parts(tmp_dir, rewritten, rewriter, kg, cfg.seed, cfg.progress, console)
    except BaseException:  # never a partial table: neither folder becomes table/
        shutil.rmtree(rewritten, ignore_errors=True)
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    shutil.rmtree(tmp_dir)
    report.extra.update(rewriter.summary())
    report.counts["llm_pseudo_captions"] = rewriter.stats["rewrites"]["accepted"]
    if cfg.rewrite is not None and cfg.rewrite.negatives:
        report.counts["llm_negatives"] = rewriter.stats["llm_negatives"]["accepted"]
    return rewritten


def _swap_in(tmp_dir: Path, out: Path) -> None:
    """The complete new table becomes OUT/table; an earlier build's (--overwrite) is dropped only then."""
    final, old = out / TABLE_DIR, out / (TABLE_DIR + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.replace(old)
    tmp_dir.replace(final)
    shutil.rmtree(old, ignore_errors=True)


def _finish_report(report: Report, kg: KG, gen: Generator, wn: WordNet, n: int, seconds: dict[str, float]) -> None:
    report.rejections(gen.rejected)
    for kind in TYPES:
        report.negatives.setdefault(kind, 0)
    report.counts["rows"] = n
    report.extra["kg"] = {"file": KG_FILE, "nodes": kg.graph.number_of_nodes(), "edges": kg.graph.number_of_edges(),
                          "conceptnet_edges": kg.conceptnet_rows,
                          "conceptnet_skipped": dict(sorted(kg.conceptnet_skipped.items())),
                          "wordnet": wn.enabled, "co_occurrence_prunes": kg.cooc_prunes}
    # (the parts add up to the whole: the summary's images/s divides by their sum)
    report.extra["seconds"] = {k: round(v, 2) for k, v in seconds.items()}


def build(cfg: BuildConfig, console=None) -> Report:
    """Pass 1 (read, count into the KG, spill), the KG finalised, the refinement calibrated, pass 2
    (rows into table parts), the optional LLM rewrite; then the table swapped into OUT, kg.json,
    report.json and report.html written."""
    precheck(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    # The LLM server is asked first: if it does not answer, one clear error before any long work.
    rewriter = Rewriter(cfg.rewrite, out) if cfg.rewrite is not None else None
    report = Report(cfg.source, _options(cfg))
    t0 = time.perf_counter()
    wn = WordNet(enabled=cfg.wordnet, defer=True)  # checked now; loaded beside pass 1's workers (or after it)
    start_up = local.Beside(wn.load, local.load_pyarrow_pandas)
    vg = VGMeta.from_dir(cfg.vg_dir if cfg.source in ("vg", "synthetic") else None)
    for p in vg.problems:
        report.skip("vg synonym maps", p)
    kg = KG(wn, vg)
    if cfg.kg is not None:
        kg.load_counts(cfg.kg)
    spill = out.resolve() / SPILL  # (absolute: an engine's workers may run elsewhere)
    seconds = {"read_and_count": 0.0, "refine": 0.0, "generate": 0.0}
    ray_engine = None
    engine = local
    if cfg.engine == "ray":
        from kgaug.engine.ray_engine import RayEngine

        engine = ray_engine = RayEngine(cfg.ray_address, cfg.workers)
    # WordNet, the synset maps and (after pass 1) the KG are hundreds of thousands of long-lived
    # objects: keep the cyclic GC from re-scanning them all the time (and from touching forked
    # workers' shared pages). Undone at the end, so repeated builds in one process leak nothing.
    gc.freeze()
    try:
        total = expected_images(cfg) if cfg.progress else cfg.limit
        with progress_bar(f"read {cfg.source}", total, cfg.progress, console) as bar:
            try:
                n = engine.pass1(cfg, lambda: records(cfg), kg, report, spill, bar, beside=start_up.start)
            finally:
                start_up.settle()
        start_up.join()
        if cfg.conceptnet is not None:
            kg.add_conceptnet(cfg.conceptnet)
        kg.finalize()
        gc.freeze()
        t1 = time.perf_counter()
        seconds["read_and_count"] = t1 - t0
        gen = Generator(kg, cfg.negatives_per_type, cfg.complete_graphs)
        if cfg.refine and cfg.negatives_per_type > 0:
            report.extra["refinement"] = refinement(lambda: spill_records(spill), kg, gen, cfg)
            seconds["refine"] = time.perf_counter() - t1
        tmp_dir = _write_table(engine, spill, kg, gen, cfg, report, n, console)
        if rewriter is not None:
            t_rw = time.perf_counter()
            tmp_dir = _rewrite(tmp_dir, rewriter, kg, cfg, report, console)
            seconds["rewrite"] = time.perf_counter() - t_rw
        _swap_in(tmp_dir, out)
        kg.save(out / KG_FILE)
        stale = drop_stale_images(out, cfg.source)
        if stale:
            report.counts["stale_images_removed"] = stale
        seconds["generate"] = time.perf_counter() - t1 - seconds["refine"] - seconds.get("rewrite", 0.0)
    finally:
        spill.unlink(missing_ok=True)
        shutil.rmtree(out / (TABLE_DIR + ".tmp"), ignore_errors=True)  # a failed run's partial parts
        gc.unfreeze()
        if ray_engine is not None:
            ray_engine.close()
            report.extra["engine"] = ray_engine.info
    _finish_report(report, kg, gen, wn, n, seconds)
    report.write(out / REPORT_FILE)
    report_page(report, out, cfg.seed)
    return report
