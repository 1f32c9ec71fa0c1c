"""`kgaug` command line: wiring only; the work lives in the modules it calls."""

from __future__ import annotations

from pathlib import Path

import typer

from kgaug import __version__

app = typer.Typer(
    rich_markup_mode=None,  # plain help: wraps at any width, no markup in option texts
    help="Stage 1: scene graphs (Visual Genome JSON or parsed captions) + a knowledge graph -> "
    "KG-grounded pseudo-captions and validated compositional hard negatives, as a parquet table.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kgaug (kgclip) {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """kgclip stage 1: build the augmented table."""


@app.command()
def build(
    source: str = typer.Option(..., "--source", help="vg | synthetic | coco | captions | webdataset"),
    out: Path = typer.Option(..., "--out", help="Output folder (table/, report.json, kg.json)."),
    vg_dir: Path = typer.Option(None, "--vg-dir", help="Visual Genome JSON folder (vg, synthetic)."),
    images: Path = typer.Option(None, "--images", help="Image folder (default for vg: VG-DIR/images or VG_100K*)."),
    captions: Path = typer.Option(None, "--captions", help="COCO caption JSON, or CSV/JSONL/parquet table."),
    shards: str = typer.Option(None, "--shards", help="WebDataset shard pattern, e.g. 'data/{00000..00009}.tar'; each image is "
                                "extracted to OUT/images/ (the table refers to those files)."),
    image_column: str = typer.Option(None, "--image-column", help="Image path column (captions source)."),
    caption_column: str = typer.Option(None, "--caption-column", help="Caption column (captions source)."),
    id_column: str = typer.Option(None, "--id-column", help="Optional id column used for keys."),
    sensitive: Path = typer.Option(None, "--sensitive", help="JSON {source_id: {tag: value}} (default VG-DIR/sensitive.json)."),
    seed: int = typer.Option(0, "--seed"),
    limit: int = typer.Option(None, "--limit", help="Read at most this many images."),
    spacy_model: str = typer.Option("en_core_web_sm", "--spacy-model", help="spaCy pipeline for caption parsing."),
    conceptnet: Path = typer.Option(None, "--conceptnet", help="ConceptNet 5 assertions CSV dump."),
    no_wordnet: bool = typer.Option(False, "--no-wordnet", help="Run without WordNet data."),
    negatives_per_type: int = typer.Option(2, "--negatives-per-type", min=0),
    n_pseudo: int = typer.Option(3, "--pseudo-captions", min=0),
    kg: Path = typer.Option(None, "--kg", help="Reuse a saved kg.json (counts merged with this corpus)."),
    rows_per_part: int = typer.Option(50_000, "--rows-per-part", min=1),
    region_captions: int = typer.Option(3, "--region-captions", min=0, help="VG region phrases kept as captions."),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes for both passes: reading VG "
                                "scene_graphs.json in byte ranges or parsing captions with spaCy, and negative "
                                "generation (0: one per core for large inputs). Output bytes do not depend on it."),
    engine: str = typer.Option("local", "--engine", help="What runs the two passes: 'local' (this machine's "
                               "cores, forked workers) or 'ray' (Ray tasks and actors; needs kgclip[ray]). Same "
                               "table either way."),
    ray_address: str = typer.Option(None, "--ray-address", help="--engine ray: a running Ray cluster ('auto' or "
                                    "ray://HOST:PORT); default: start Ray on this machine (--workers CPUs)."),
    refine: bool = typer.Option(True, "--refine/--no-refine", help="Adversarial refinement: thin the negatives of "
                                "a type that a text-only LM of the corpus's captions tells from their caption, "
                                "choosing other valid edits instead (counted in report.json)."),
    refine_floor: float = typer.Option(0.2, "--refine-floor", min=0.0, max=1.0, help="The least share of a "
                                       "type's negatives on the side the LM tells apart that refinement keeps "
                                       "(1: keep all, as --no-refine)."),
    complete_graphs: bool = typer.Option(False, "--complete-graphs", help="Each image's scene graph lists every "
                                         "object and attribute its picture shows (a synthetic world): an object "
                                         "or attribute it lacks is absent, so add_obj may add any plausible object "
                                         "and add_att any attribute. Without it, add_obj adds only a person or an "
                                         "animal no caption names, add_att only one contradicting a known one."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier build in OUT (its table/, "
                                   "report.json, kg.json, images/) once the new table is complete; without it "
                                   "such an OUT is an error."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars (the summary is still printed)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", hidden=True),  # (older spelling of --quiet)
    rewrite: str = typer.Option(None, "--rewrite", help="LLM rewrites of the pseudo-captions, each checked against "
                                "the scene graph: 'ollama' (a local Ollama server). Off by default."),
    ollama_model: str = typer.Option("llama3.2", "--ollama-model", help="Ollama model (`ollama pull NAME` first)."),
    ollama_host: str = typer.Option(None, "--ollama-host", help="Ollama server URL (default: OLLAMA_HOST, else "
                                    "http://127.0.0.1:11434)."),
    rewrites_per_image: int = typer.Option(2, "--rewrites-per-image", min=0, help="Rewrites asked per image."),
    rewrite_workers: int = typer.Option(4, "--rewrite-workers", min=1, help="Requests in flight."),
    rewrite_cache: Path = typer.Option(None, "--rewrite-cache", help="Answer cache (default OUT/rewrite_cache): "
                                       "a rerun sends no request for work already done."),
    llm_negatives: bool = typer.Option(False, "--llm-negatives", help="Also rephrase each hard negative fluently "
                                       "(kept only if it still states the same facts, the false one included)."),
    ollama_timeout: float = typer.Option(120.0, "--ollama-timeout", min=0.001, help="Seconds per request."),
    ollama_retries: int = typer.Option(3, "--ollama-retries", min=0, help="Retries on 429/5xx, timeouts, "
                                       "connection errors."),
    ollama_backoff: float = typer.Option(1.0, "--ollama-backoff", min=0.0, help="Seconds before the first retry "
                                         "(doubled each time)."),
) -> None:
    """Build the augmented table: pseudo-captions and validated hard negatives per image."""
    from kgaug.build import BuildConfig
    from kgaug.build import build as run
    from kgaug.ollama_io import OllamaUnavailable
    from kgaug.parse import SpacyModelMissing
    from kgaug.rewrite import BACKENDS, RewriteConfig
    from kgaug.sources import InputError
    from kgaug.summary import summary_text
    from kgaug.wordnet import WordNetMissing

    if rewrite is not None and rewrite not in BACKENDS:
        typer.echo(f"kgaug build: error: unknown --rewrite {rewrite!r} (one of {', '.join(BACKENDS)})", err=True)
        raise typer.Exit(2)
    if llm_negatives and rewrite is None:
        typer.echo("kgaug build: error: --llm-negatives needs --rewrite ollama", err=True)
        raise typer.Exit(2)
    rc = None if rewrite is None else RewriteConfig(
        backend=rewrite, model=ollama_model, host=ollama_host, per_image=rewrites_per_image, workers=rewrite_workers,
        cache=rewrite_cache, negatives=llm_negatives, timeout=ollama_timeout, retries=ollama_retries,
        backoff=ollama_backoff)
    cfg = BuildConfig(source=source, out=out, vg_dir=vg_dir, images=images, captions=captions, shards=shards,
                      image_column=image_column, caption_column=caption_column, id_column=id_column,
                      sensitive=sensitive, seed=seed, limit=limit, spacy_model=spacy_model, conceptnet=conceptnet,
                      wordnet=not no_wordnet, negatives_per_type=negatives_per_type, pseudo_captions=n_pseudo,
                      kg=kg, rows_per_part=rows_per_part, region_captions=region_captions, workers=workers,
                      refine=refine, refine_floor=refine_floor, complete_graphs=complete_graphs, overwrite=overwrite, progress=progress and not quiet,
                      rewrite=rc, engine=engine, ray_address=ray_address)
    try:
        report = run(cfg)
    except (InputError, SpacyModelMissing, WordNetMissing, OllamaUnavailable) as e:
        typer.echo(f"kgaug build: error: {e}", err=True)
        raise typer.Exit(2) from None
    except OSError as e:  # disk full, a read-only folder: the build stops; an earlier build in OUT stays
        typer.echo(f"kgaug build: error: {e}; nothing of this run replaced what was in {out}", err=True)
        raise typer.Exit(1) from None
    typer.echo(summary_text(report, str(out)))
    if not report.counts["images"]:  # nothing a later stage could use: say so in the exit status
        reasons = ", ".join(f"{n} × {r}" for r, n in report.skip_reasons.most_common(3)) or "no input records"
        typer.echo(f"kgaug build: error: the table has no rows ({reasons}; every reason in "
                   f"{out}/report.json)", err=True)
        raise typer.Exit(1)


# `kgaug synth` lives in its own module (the embedded world); keep this registration.
from kgaug.synth.cli import synth as _synth  # noqa: E402

app.command("synth")(_synth)
