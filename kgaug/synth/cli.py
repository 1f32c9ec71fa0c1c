"""`kgaug synth`: render the embedded compositional world (wiring only; see writer.py for the layout)."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def synth(
    out: Path = typer.Option(..., "--out", help="Output folder (Visual Genome JSON + images + eval/)."),
    train: int = typer.Option(5000, "--train", min=1, help="Number of training images."),
    eval_: int = typer.Option(1000, "--eval", min=0, help="Number of held-out eval scenes (0: no eval split)."),
    image_size: int = typer.Option(None, "--image-size", help="Image side in pixels (default: the preset's)."),
    seed: int = typer.Option(0, "--seed", help="World seed: held-out pairs and every scene."),
    bias: float = typer.Option(0.0, "--bias", min=0.0, max=1.0,
                               help="Plant a group-tag/colour correlation in training with this probability."),
    preset: str = typer.Option("small", "--preset", help="World size: tiny | small | default (see world.json)."),
    shapes: int = typer.Option(None, "--shapes", help="Override the preset's number of shapes."),
    colours: int = typer.Option(None, "--colours", help="Override the preset's number of colours."),
    holdout: float = typer.Option(0.2, "--holdout", help="Share of object-type pairs held out for eval."),
    zeroshot_per_class: int = typer.Option(40, "--zeroshot-per-class", help="Zero-shot images per shape."),
) -> None:
    """Render the embedded compositional world in Visual Genome's JSON format, with a held-out
    SugarCrepe-format eval split, zero-shot folders and a bias probe."""
    from kgaug.synth.world import WorldConfig
    from kgaug.synth.writer import write_world

    try:
        cfg = WorldConfig.preset(preset, image_size=image_size, seed=seed, bias=bias, n_shapes=shapes,
                                 n_colours=colours, holdout=holdout)
    except ValueError as e:
        typer.echo(f"kgaug synth: {e}", err=True)
        raise typer.Exit(2) from e
    t0 = time.perf_counter()
    summary = write_world(cfg, out, train, eval_, zeroshot_per_class,
                          progress=lambda msg: typer.echo(f"kgaug synth: {msg}", err=True))
    dt = time.perf_counter() - t0
    ev = summary["eval"]
    typer.echo(f"kgaug synth: wrote {train} training images and {eval_} held-out scenes "
               f"({ev.get('items', {})}) to {out} in {dt:.1f}s; "
               f"{len(summary['held_out_pairs'])} object pairs held out of "
               f"{len(summary['held_out_pairs']) + summary['train_pairs']}")
