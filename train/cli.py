"""`train` command line: wiring only; the work lives in the modules it calls."""

from __future__ import annotations

import typer

from train import __version__

app = typer.Typer(
    help="Stage 3: train a CLIP model on kgclip shards (cluster batches, AHNM, fair sigmoid loss) "
    "and evaluate it (compositional, zero-shot, retrieval).",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"train (kgclip) {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """kgclip stage 3: train run / eval / export."""


@app.command()
def run() -> None:
    """Train on a shard folder (not built yet)."""
    typer.echo("train run: not built yet (issue 5)", err=True)
    raise typer.Exit(2)
