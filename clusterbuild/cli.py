"""`clusterbuild` command line: wiring only; the work lives in the modules it calls."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from clusterbuild import __version__

app = typer.Typer(
    rich_markup_mode=None,  # plain help: wraps at any width, no markup in option texts
    help="Stage 2: embed a kgaug table with open_clip, cluster it with FAISS, and write "
    "WebDataset shards with cluster ids that open_clip's trainer reads unchanged.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"clusterbuild (kgclip) {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """kgclip stage 2: embed -> cluster -> kNN -> shards."""


def _opts(input: Path, out: Path, **kw):
    from clusterbuild.pipeline import Options

    kw = {k: v for k, v in kw.items() if v is not None or k in ("clusters", "cluster_size", "pretrained", "cache", "balance_attribute")}
    if kw.get("pretrained") in ("none", "None", ""):
        kw["pretrained"] = None
    return Options(input=input, out=out, **kw)


def _run(fn):
    """Clear one-line errors for expected failures instead of tracebacks."""
    try:
        return fn()
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError, OSError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None


IN_ARG = typer.Argument(..., help="A `kgaug build` output folder (table/*.parquet).")
OUT_OPT = typer.Option(..., "--out", "-o", help="Output folder (shards; cache in OUT/embeddings unless --cache).")
MODEL_OPT = typer.Option("ViT-B-32", "--model", help="open_clip model name, kgclip config (kgclip-tiny-64) or a JSON config file.")
PRETRAINED_OPT = typer.Option(None, "--pretrained", help="open_clip pretrained tag or local checkpoint; omit or 'none' for random init (warned).")
DEVICE_OPT = typer.Option("cpu", "--device", help="cpu or cuda (FAISS GPU when this faiss build has it, else CPU, said out loud).")
BATCH_OPT = typer.Option(64, "--batch-size", min=1, help="Embedding batch size.")
WORKERS_OPT = typer.Option(0, "--workers", min=0, help="Image-decoding worker processes while embedding (0 = in-process).")
CACHE_OPT = typer.Option(None, "--cache", help="Embedding/cluster cache folder (default OUT/embeddings).")
MAX_SIDE_OPT = typer.Option(4096, "--max-side", min=16, help="Images with a longer side are downscaled and re-encoded.")
QUIET_OPT = typer.Option(False, "--quiet", "-q", help="No progress bars.")
CLUSTERS_OPT = typer.Option(None, "--clusters", "-k", help="Number of k-means clusters.")
CSIZE_OPT = typer.Option(None, "--cluster-size", help="Target samples per cluster (k = n / size); default 256.")
CLUSTER_ON_OPT = typer.Option(
    "auto", "--cluster-on", help="What k-means groups: image (embeddings), graph (the words of each scene graph: "
    "images described with the same words, so in-batch negatives differ in binding), auto (graph when >= 90 % of "
    "rows have one and the graphs differ; else image).")
KNN_OPT = typer.Option(3, "--knn", min=0, help="Nearest other images stored per sample (hard image negatives).")
DUP_OPT = typer.Option(0.97, "--dup-threshold", help="Cosine similarity at or above which a kNN image is a near-duplicate.")
SEED_OPT = typer.Option(0, "--seed", help="Seed for k-means and the cluster order.")


@app.command()
def embed(input: Path = IN_ARG, out: Path = OUT_OPT, model: str = MODEL_OPT, pretrained: str = PRETRAINED_OPT,
          device: str = DEVICE_OPT, batch_size: int = BATCH_OPT, workers: int = WORKERS_OPT, cache: Path = CACHE_OPT,
          max_side: int = MAX_SIDE_OPT, quiet: bool = QUIET_OPT) -> None:
    """Embed images, captions and pseudo-captions (float16, L2-normalised) into a resumable cache."""
    from clusterbuild import pipeline

    opts = _opts(input, out, model=model, pretrained=pretrained, device=device, batch_size=batch_size, workers=workers,
                 cache=cache, max_side=max_side, progress=not quiet)
    _run(lambda: pipeline.run_embed(opts, pipeline.load_rows(input), log=console.print))


@app.command()
def cluster(input: Path = IN_ARG, out: Path = OUT_OPT, model: str = MODEL_OPT, pretrained: str = PRETRAINED_OPT,
            clusters: int = CLUSTERS_OPT, cluster_size: int = CSIZE_OPT, cluster_on: str = CLUSTER_ON_OPT,
            knn: int = KNN_OPT, dup_threshold: float = DUP_OPT, seed: int = SEED_OPT, device: str = DEVICE_OPT,
            batch_size: int = BATCH_OPT, workers: int = WORKERS_OPT, cache: Path = CACHE_OPT, max_side: int = MAX_SIDE_OPT,
            quiet: bool = QUIET_OPT) -> None:
    """FAISS spherical k-means + kNN over the (cached) embeddings; writes clusters.npz to the cache."""
    from clusterbuild import pipeline

    opts = _opts(input, out, model=model, pretrained=pretrained, clusters=clusters, cluster_size=cluster_size,
                 cluster_on=cluster_on, knn=knn, dup_threshold=dup_threshold, seed=seed, device=device,
                 batch_size=batch_size, workers=workers, cache=cache, max_side=max_side, progress=not quiet)

    def go():
        rows = pipeline.load_rows(input)
        pipeline.run_cluster(opts, rows, pipeline.run_embed(opts, rows, log=console.print), log=console.print)

    _run(go)


@app.command()
def shard(input: Path = IN_ARG, out: Path = OUT_OPT, model: str = MODEL_OPT, pretrained: str = PRETRAINED_OPT,
          clusters: int = CLUSTERS_OPT, cluster_size: int = CSIZE_OPT, cluster_on: str = CLUSTER_ON_OPT,
          knn: int = KNN_OPT, dup_threshold: float = DUP_OPT,
          samples_per_shard: int = typer.Option(10000, "--samples-per-shard", min=1, help="Samples per tar."),
          seed: int = SEED_OPT, device: str = DEVICE_OPT, batch_size: int = BATCH_OPT, workers: int = WORKERS_OPT, cache: Path = CACHE_OPT,
          max_side: int = MAX_SIDE_OPT,
          balance_attribute: str = typer.Option(None, "--balance-attribute", help="Sensitive attribute (e.g. gender) whose groups get equal weight within each cluster (M4-style weights)."),
          overwrite: bool = typer.Option(False, "--overwrite", help="Replace a shard set of other inputs/options in OUT."),
          quiet: bool = QUIET_OPT) -> None:
    """Embed -> cluster -> kNN -> WebDataset shards (resumable; reuses cached embeddings)."""
    from clusterbuild import pipeline

    opts = _opts(input, out, model=model, pretrained=pretrained, clusters=clusters, cluster_size=cluster_size,
                 cluster_on=cluster_on, knn=knn, dup_threshold=dup_threshold, samples_per_shard=samples_per_shard,
                 seed=seed,
                 device=device, batch_size=batch_size, workers=workers, cache=cache,
                 max_side=max_side, balance_attribute=balance_attribute, overwrite=overwrite, progress=not quiet)
    _run(lambda: pipeline.run_shard(opts, log=console.print))


@app.command("export-negclip")
def export_negclip(
    folder: Path = typer.Argument(..., help="A shard folder written by `clusterbuild shard`."),
    out: Path = typer.Option(..., "--out", "-o", help="The TSV to write (title, filepath, neg_caption, neg_image)."),
    images_dir: Path = typer.Option(None, "--images-dir", help="Where images are extracted (default <tsv stem>_images/)."),
) -> None:
    """Export NegCLIP's training TSV (the NegCLIP fork of open_clip reads it with --csv-separator '\\t')."""
    from clusterbuild.negclip import export

    counts = _run(lambda: export(folder, out, images_dir))
    console.print(f"wrote {counts['rows']} rows to {out} ({dict(counts)})")


@app.command()
def validate(
    folder: Path = typer.Argument(..., help="A shard folder (NNNNNN.tar + sizes.json + _info.json ...)."),
    no_images: bool = typer.Option(False, "--no-images", help="Skip decoding every image (faster)."),
) -> None:
    """Check a shard folder against the kgclip shard contract (shards/README.md).

    Prints every violation (shard, sample key, message) and exits 1 if there is any.
    """
    from clusterbuild.validate import validate_folder

    violations = validate_folder(folder, check_images=not no_images)
    for v in violations:
        typer.echo(str(v))
    if violations:
        console.print(f"[red]{len(violations)} violation(s)[/red] in {folder}")
        raise typer.Exit(1)
    console.print(f"[green]ok[/green]: {folder} conforms to the shard contract")


if __name__ == "__main__":
    app(prog_name="clusterbuild")
