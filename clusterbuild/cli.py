"""`clusterbuild` command line: wiring only; the work lives in the modules it calls."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from clusterbuild import __version__

app = typer.Typer(
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


@app.command()
def validate(
    folder: Path = typer.Argument(..., help="A shard folder (NNNNNN.tar + sizes.json + _info.json ...)."),
    no_images: bool = typer.Option(False, "--no-images", help="Skip decoding every image (faster)."),
) -> None:
    """Check a shard folder against the kgclip shard contract (shards/README.md).

    Prints every violation as SHARD:KEY: message and exits 1 if there is any.
    """
    from clusterbuild.validate import validate_folder

    violations = validate_folder(folder, check_images=not no_images)
    for v in violations:
        typer.echo(str(v))
    if violations:
        console.print(f"[red]{len(violations)} violation(s)[/red] in {folder}")
        raise typer.Exit(1)
    console.print(f"[green]ok[/green]: {folder} conforms to the shard contract")
