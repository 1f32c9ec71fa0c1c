"""`kgaug synth` (placeholder until the embedded-world issue lands)."""

import typer


def synth() -> None:
    """Render the embedded compositional world (not built yet)."""
    typer.echo("kgaug synth: not built yet (issue 6)", err=True)
    raise typer.Exit(2)
