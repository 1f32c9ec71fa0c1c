"""`train` command line: wiring only; the work lives in the modules it calls."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from train import __version__

app = typer.Typer(
    rich_markup_mode=None,  # plain help: wraps at any width, no markup in option texts
    help="Stage 3: train a CLIP model on kgclip shards (cluster batches, AHNM, fair contrastive loss) "
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


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


@app.command()
def run(
    shards: list[str] = typer.Argument(None, help="Shard folders, tar files or brace patterns."),
    out: str | None = typer.Option(None, "--out", help="Output folder (checkpoints, metrics, plots, export); "
                                   "required, here or as `out` in --config."),
    config: Path | None = typer.Option(None, "--config", help="TOML/YAML file setting the same options."),
    model: str | None = typer.Option(None, help="open_clip name, kgclip config name or JSON file [ViT-B-32, as clusterbuild]."),
    pretrained: str | None = typer.Option(None, help="open_clip tag or checkpoint path [none: random init]."),
    steps: int | None = typer.Option(None, help="Optimizer steps (overrides --epochs)."),
    epochs: int | None = typer.Option(None, help="Epochs when --steps is not given [1]."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Images per batch per process [32]."),
    lr: float | None = typer.Option(None, help="Learning rate of the towers [5e-4]."),
    logit_lr: float | None = typer.Option(None, "--logit-lr", help="lr of logit_scale/bias [1e-2]."),
    siglip_init_bias: str | None = typer.Option(
        None, "--siglip-init-bias", help="Sigmoid losses' initial bias: a number or 'auto' [-10]."),
    loss: str | None = typer.Option(
        None, help="clip | fair-clip | siglip | fair-siglip | siglip-rel | fair-siglip-rel; default fair-clip."),
    negatives: str | None = typer.Option(None, help="none | static (NegCLIP) | ahnm; default ahnm."),
    batching: str | None = typer.Option(None, help="random | cluster; default cluster."),
    clusters_per_batch: int | None = typer.Option(None, "--clusters-per-batch", help="Clusters per batch [4]."),
    positives: int | None = typer.Option(None, help="Positive texts per image; 0 = auto [0]."),
    negatives_per_sample: int | None = typer.Option(None, "--negatives-per-sample", help="KG negatives per image [2]."),
    negative_sampling: str | None = typer.Option(
        None, "--negative-sampling", help="uniform | balanced (over negative types); default uniform."),
    source_positives: str | None = typer.Option(
        None, "--source-positives", help="off | batch | kg: a KG negative's source caption as a positive; default off."),
    kg_softmax: float | None = typer.Option(
        None, "--kg-softmax", help="Weight of the per-image softmax over own positives + KG negatives (CE-CLIP) [0]."),
    fair_lambda: float | None = typer.Option(None, "--fair-lambda", help="Association-bias penalty weight [10]."),
    lora_rank: int | None = typer.Option(None, "--lora-rank", help="LoRA rank; 0 = full fine-tuning [0]."),
    freeze_blocks: int | None = typer.Option(None, "--freeze-blocks", help="Frozen lower blocks per tower [0]."),
    precision: str | None = typer.Option(None, help="fp32 | bf16 | fp16 (AMP on GPU) [fp32]."),
    device: str | None = typer.Option(None, help="cpu | cuda [cpu]."),
    seed: int | None = typer.Option(None, help="Random seed [0]."),
    workers: int | None = typer.Option(None, help="DataLoader workers decoding images [0]."),
    save_every: int | None = typer.Option(None, "--save-every", help="Steps between checkpoints [50]."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/latest.pt."),
    set_: list[str] = typer.Option(
        None, "--set", help="KEY=VALUE for any option of the config file, e.g. ahnm.beta_max=2 (repeatable)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over in an OUT holding an earlier run "
                                   "(its checkpoint, metrics, plots and export are removed); see also --resume."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display (step, loss, lr, img/s, AHNM β, "
                               "ETA: a live line on a terminal, a plain line every 30 s otherwise)."),
) -> None:
    """Train on kgclip shards; writes OUT/{latest.pt, metrics.jsonl, plots/, export/, summary.json}."""
    from train import config as train_config
    from train import loop

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = train_config.TrainConfig()
        if config is not None:
            cfg = train_config.from_dict(train_config.load_file(config), cfg, str(config))
        flags = dict(shards=shards or None, out=out, model=model, pretrained=pretrained, steps=steps, epochs=epochs,
                     batch_size=batch_size, lr=lr, logit_lr=logit_lr, loss=loss,
                     siglip_init_bias=_number_or_word(siglip_init_bias), negatives=negatives,
                     batching=batching, clusters_per_batch=clusters_per_batch, positives=positives,
                     negatives_per_sample=negatives_per_sample, negative_sampling=negative_sampling,
                     source_positives=source_positives, kg_softmax=kg_softmax, fair_lambda=fair_lambda,
                     lora_rank=lora_rank,
                     freeze_blocks=freeze_blocks, precision=precision, device=device, seed=seed, workers=workers,
                     save_every=save_every, resume=resume or None)
        cfg = train_config.from_dict({k: v for k, v in flags.items() if v is not None}, cfg, "command line")
        if set_:
            cfg = train_config.from_dict(train_config.parse_overrides(set_), cfg, "--set")
        summary = loop.run(cfg, show_progress=not quiet, overwrite=overwrite)
    except (ValueError, FileNotFoundError, FileExistsError, loop.NaNLossError) as e:
        _fail(str(e))
    typer.echo(json.dumps(summary, indent=2))


def _number_or_word(v: str | None) -> float | str | None:
    try:
        return None if v is None else float(v)
    except ValueError:
        return v


@app.command("eval")
def eval_cmd(
    checkpoint: str = typer.Option(..., "--checkpoint", help="latest.pt, a run folder or an export folder."),
    out: Path = typer.Option(..., "--out", help="Metrics JSON (a bar chart .png is written next to it)."),
    sugarcrepe: Path | None = typer.Option(None, help="Folder of SugarCrepe-format JSON, one file per subset."),
    aro: list[Path] = typer.Option(None, help="ARO VG-Relation / VG-Attribution JSON (repeatable)."),
    images: Path | None = typer.Option(None, help="Image folder for --sugarcrepe / --aro."),
    zeroshot: Path | None = typer.Option(None, help="Folder: one subfolder of images per class."),
    retrieval: list[str] = typer.Option(None, help="Shards for image<->text retrieval (repeatable)."),
    model: str | None = typer.Option(None, help="Model config when the checkpoint does not carry one."),
    batch_size: int = typer.Option(64, "--batch-size"),
    device: str = typer.Option("cpu"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Compositional (SugarCrepe, ARO), zero-shot and retrieval metrics of a checkpoint."""
    from train import eval as evaluation

    try:
        res = evaluation.evaluate(checkpoint, out, sugarcrepe=sugarcrepe, aro=aro or None, images=images,
                         zeroshot=zeroshot, retrieval=retrieval or None, model=model,
                         batch_size=batch_size, device=device, show_progress=not quiet)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    typer.echo(json.dumps(res, indent=2))


@app.command()
def export(
    checkpoint: str = typer.Option(..., "--checkpoint", help="latest.pt or a run folder."),
    out: Path = typer.Option(..., "--out", help="Folder for open_clip's local-dir: loader."),
) -> None:
    """Write an open_clip `local-dir:` folder (open_clip_config.json + weights)."""
    from train.export import export_checkpoint

    try:
        d = export_checkpoint(checkpoint, out)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    typer.echo(f"exported to {d} (load with open_clip.create_model_and_transforms('local-dir:{d}'))")


if __name__ == "__main__":
    app()
