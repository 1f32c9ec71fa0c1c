"""`kgaug` command line: wiring only; the work lives in the modules it calls."""

from __future__ import annotations

import typer

from kgaug import __version__

app = typer.Typer(
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
def build() -> None:
    """Build the augmented table (not built yet)."""
    typer.echo("kgaug build: not built yet (issue 3)", err=True)
    raise typer.Exit(2)


# `kgaug synth` lives in its own module (the embedded world); keep this registration.
from kgaug.synth.cli import synth as _synth  # noqa: E402

app.command("synth")(_synth)
