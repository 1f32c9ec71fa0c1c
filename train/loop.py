"""The training loop: `run(config) -> summary`, callable in-process (CLI, demo, ablation, tests).

Seeds, model, optimizer (AdamW; warmup + cosine), AMP on GPU, DDP under torchrun, checkpoints
every `save_every` steps, exact `--resume`, metrics per step, plots, export and a summary at the end.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgclip.progress import TrainProgress
from train import checkpoint as ckpt_io
from train import config as train_config
from train import data, metrics, model, step

log = logging.getLogger(__name__)


class NaNLossError(RuntimeError):
    """The loss went NaN/inf; the last good checkpoint is kept untouched."""


def _dist_setup(cfg: train_config.TrainConfig) -> tuple[int, int, str]:
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = cfg.device
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if world > 1 else 0
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda but no CUDA device is available")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    return rank, world, device


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _count_samples(urls: list[str]) -> int:
    """Samples in `urls`: from sizes.json next to the shards when it lists them, else by reading."""
    total = 0
    by_dir: dict[Path, dict] = {}
    for u in urls:
        p = Path(u)
        if p.parent not in by_dir:
            f = p.parent / "sizes.json"
            by_dir[p.parent] = json.loads(f.read_text()) if f.exists() else {}
        n = by_dir[p.parent].get(p.name)
        if n is None:
            import tarfile

            with tarfile.open(p) as tf:
                n = len({m.name.split(".", 1)[0] for m in tf.getmembers() if m.isfile()})
        total += int(n)
    return total


def _schedule(total: int, warmup: int):
    def f(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        t = (s - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return f


def _amp(cfg: train_config.TrainConfig, device: str) -> torch.dtype | None:
    if cfg.precision == "fp32" or not device.startswith("cuda"):
        if cfg.precision != "fp32":
            log.warning("--precision %s is for GPUs; running fp32 on %s", cfg.precision, device)
        return None
    return torch.bfloat16 if cfg.precision == "bf16" else torch.float16


class _Mix:
    """Cluster-batch probability for batch n of the current epoch (picklable for loader workers)."""

    def __init__(self, start: float, end: float, step0: int, total: int):
        self.start, self.end, self.step0, self.total = start, end, step0, total

    def __call__(self, n: int) -> float:
        p = min(1.0, (self.step0 + n) / max(1, self.total))
        return self.start + (self.end - self.start) * p


def _mix(cfg: train_config.TrainConfig, state: dict, total: int) -> _Mix | None:
    if cfg.cluster_mix_start >= 1.0 and cfg.cluster_mix_end >= 1.0:
        return None
    return _Mix(cfg.cluster_mix_start, cfg.cluster_mix_end, state["step"] - state["batch_in_epoch"], total)


def resolve(config: train_config.TrainConfig | dict, **overrides: Any) -> train_config.TrainConfig:
    cfg = train_config.from_dict(config) if isinstance(config, dict) else replace(config)
    return train_config.from_dict(overrides, cfg, "overrides").validate() if overrides else cfg.validate()


# What a run writes into OUT: a new run (neither --resume nor --overwrite) refuses a folder holding any.
RUN_OUTPUT = (ckpt_io.LATEST, metrics.METRICS, metrics.SUMMARY, "config.json", "config.yaml", "plots", "export",
              "report.html")


def run(config: train_config.TrainConfig | dict, *, show_progress: bool = False, overwrite: bool = False,
        **overrides: Any) -> dict[str, Any]:
    """Train as configured; returns the summary (also written to OUT/summary.json). `show_progress`:
    the live display on stderr (`kgclip.progress.TrainProgress`; `train run` without `--quiet`).
    An OUT holding an earlier run is continued with `resume`, replaced with `overwrite` (its files
    removed first), else refused before anything is built."""
    cfg = resolve(config, **overrides)
    if not cfg.out:
        raise ValueError("an output folder is required (--out DIR)")
    out = Path(cfg.out)
    earlier = [n for n in RUN_OUTPUT if (out / n).exists()]
    if earlier and not cfg.resume:
        if not overwrite:
            raise FileExistsError(f"{out} already holds a training run ({', '.join(earlier)}); use --resume to "
                                  "continue it, --overwrite to start over, or another --out folder")
        if int(os.environ.get("RANK", "0")) == 0:
            for n in earlier:
                p = out / n
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    import torch.distributed as dist

    owns_group = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized()
    rank, world, device = _dist_setup(cfg)
    _seed(cfg.seed + rank)
    urls = data.resolve_shards(cfg.shards)
    n_samples = _count_samples(urls)
    total = cfg.steps or cfg.epochs * max(1, math.ceil(n_samples / (cfg.batch_size * world)))

    built = model.create(cfg, device)
    net = built.model
    train_model = net
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[torch.cuda.current_device()] if device.startswith("cuda") else None)
    opt = torch.optim.AdamW(model.param_groups(net, cfg), betas=(0.9, 0.98), eps=1e-6)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(total, cfg.warmup))
    amp = _amp(cfg, device)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    collate = data.Collator(built.preprocess_train, built.tokenizer, cfg.n_positives, cfg.negatives_per_sample,
                            cfg.negatives != "none", cfg.negative_sampling, cfg.source_positives)

    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0}
    latest = out / ckpt_io.LATEST
    resumed_from = None
    if cfg.resume and latest.exists():
        ck = ckpt_io.load(latest)
        ckpt_io.check_compatible(ck, built.name, built.model_cfg, latest)
        ckpt_io.load_state(net, ck.get("train_state_dict") or ck["state_dict"], latest)
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        ckpt_io.set_rng_state(ck["rng"][rank] if isinstance(ck["rng"], list) else ck["rng"])
        state = dict(ck["data"][rank] if isinstance(ck["data"], list) else ck["data"])
        resumed_from = state["step"]
        log.info("resumed from %s at step %d", latest, state["step"])
    elif cfg.resume:
        log.warning("--resume: no %s yet, starting from scratch", latest)
    if rank == 0:
        train_config.save_resolved(cfg, out)
    mlog = metrics.MetricsLog(out, resume_step=resumed_from) if rank == 0 else None

    def save() -> None:
        rng, pos = [ckpt_io.rng_state()], [dict(state)]
        if world > 1:  # every rank has its own RNG streams and data position
            import torch.distributed as dist

            rng, pos = [None] * world, [None] * world
            dist.all_gather_object(rng, ckpt_io.rng_state())
            dist.all_gather_object(pos, dict(state))
        if rank != 0:
            return
        payload = {"name": built.name, "model_cfg": built.model_cfg, "step": state["step"],
                   "epoch": state["epoch"], "state_dict": model.plain(built).state_dict(),
                   "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                   "scaler": scaler.state_dict() if scaler is not None else None,
                   "rng": rng if world > 1 else rng[0], "data": pos if world > 1 else pos[0],
                   "config": cfg.to_dict()}
        if net is not built.base:
            payload["train_state_dict"] = net.state_dict()
        ckpt_io.save(latest, payload)

    t_start, t_last = time.perf_counter(), time.perf_counter()
    display = TrainProgress(total, start=state["step"], enabled=show_progress and rank == 0)
    try:
        while state["step"] < total:
            stream = data.ShardStream(urls, collate, cfg.batch_size, cfg.batching, cfg.clusters_per_batch,
                                      cfg.buffer_size, cfg.seed, state["epoch"], rank,
                                      skip_batches=state["batch_in_epoch"], mix=_mix(cfg, state, total))
            batches = iter(data.loader(stream, cfg.workers))
            if cfg.workers > 0:
                for _ in range(state["batch_in_epoch"]):
                    next(batches, None)
            seen = 0
            for batch in batches:
                seen += 1
                progress = state["step"] / max(1, total)
                train_model.train()
                loss, parts, stats = step.forward_loss(train_model, batch, cfg, progress, device, amp)
                if not torch.isfinite(loss):
                    raise NaNLossError(
                        f"loss is {loss.item()} at step {state['step'] + 1}; stopped. The last good checkpoint "
                        f"{latest if latest.exists() else '(none yet)'} is kept untouched. Lower --lr or "
                        f"check the data.")
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(opt)
                else:
                    loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad], cfg.grad_clip)
                if scaler is not None:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                sched.step()
                with torch.no_grad():
                    built.base.logit_scale.clamp_(0, math.log(100))  # as open_clip_train
                state["step"] += 1
                state["batch_in_epoch"] += 1
                now = time.perf_counter()
                if display.enabled:
                    display.update(state["step"], loss.item(), sched.get_last_lr()[0],
                                   stats["n_images"] / max(now - t_last, 1e-9), stats.get("beta"))
                if mlog is not None and (state["step"] % cfg.log_every == 0 or state["step"] == total):
                    bias = getattr(built.base, "logit_bias", None)
                    mlog.write({"step": state["step"], "epoch": state["epoch"], "progress": progress,
                                "loss": loss.item(), "loss_parts": {k: v.item() for k, v in parts.items()},
                                "lr": sched.get_last_lr()[0], "logit_scale": built.base.logit_scale.detach().exp().item(),
                                "logit_bias": bias.detach().item() if bias is not None else None,
                                "images_per_s": stats["n_images"] / max(now - t_last, 1e-9),
                                "n_texts": stats.pop("n_texts"), "n_images": stats.pop("n_images"),
                                "ahnm": stats})
                t_last = now
                if state["step"] % cfg.save_every == 0 or state["step"] == total:
                    save()
                if state["step"] >= total:
                    break
            else:
                if seen == 0 and state["batch_in_epoch"] == 0:
                    raise ValueError(f"shards {urls[0]}...: no batch of at least 2 samples in an epoch")
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
    finally:
        display.close()
        if mlog is not None:
            mlog.close()
    summary: dict[str, Any] = {}
    if rank == 0:
        summary = finish(cfg, built, out, time.perf_counter() - t_start, resumed_from)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # rank 0's summary is written before any rank leaves
        if owns_group:
            dist.destroy_process_group()  # pytorch asks for it; a group left to finalisation can abort
    return summary


def finish(cfg: train_config.TrainConfig, built: model.Built, out: Path, seconds: float, resumed_from: int | None) -> dict:
    from kgclip.atomic import atomic_write_json

    recs = metrics.read(out)
    summary = metrics.summarize(recs)
    summary.update(out=str(out), checkpoint=str(out / ckpt_io.LATEST), seconds=round(seconds, 2),
                   resumed_from=resumed_from, model=built.name, loss_kind=cfg.loss, negatives=cfg.negatives,
                   batching=cfg.batching)
    trainable, n_params = model.n_trainable(built.model)
    summary.update(trainable_params=trainable, params=n_params)
    if cfg.plots:
        summary["plots"] = metrics.plot(out)
    if cfg.export:
        from train.export import export_model

        summary["export"] = str(export_model(model.plain(built), built.model_cfg, built.preprocess, out / "export"))
    summary["report"] = str(metrics.report_page(out, summary, recs))
    atomic_write_json(out / metrics.SUMMARY, summary)
    return summary
