"""The trained model: open_clip creation, LoRA (peft), frozen lower blocks, optimizer groups.

LoRA targets the MLP projections (`c_fc`, `c_proj`) and the `nn.MultiheadAttention` modules
(`attn`) themselves: MultiheadAttention reads `out_proj.weight` directly, so a LoRA on `out_proj`
alone would silently never run (ENVIRONMENT.md, verified with peft 0.21).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from kgclip import models
from train.config import TrainConfig
from train.losses import RELATIVE_BIAS_LOSSES, SIGMOID_LOSSES

log = logging.getLogger(__name__)
LORA_TARGETS = ("c_fc", "c_proj", "attn")


@dataclass
class Built:
    model: Any  # what the loop trains (a peft wrapper when LoRA is on)
    base: Any  # the plain open_clip model inside it
    preprocess_train: Any
    preprocess: Any
    tokenizer: Any
    name: str
    model_cfg: dict


def create(cfg: TrainConfig, device: str = "cpu") -> Built:
    kw: dict[str, Any] = {}
    if cfg.loss in SIGMOID_LOSSES:  # as open_clip_train does for --siglip
        world = int(os.environ.get("WORLD_SIZE", "1"))
        kw = {"init_logit_scale": math.log(cfg.siglip_init_scale), "init_logit_bias": cfg.siglip_bias(world)}
    lm = models.create(cfg.model, cfg.pretrained, device=device, **kw)
    if lm.random_init:
        log.warning(models.RANDOM_INIT_WARNING)
    base = lm.model
    if cfg.loss in RELATIVE_BIAS_LOSSES:  # fixed temperature; only the bias is learnt
        base.logit_scale.requires_grad_(False)
    if cfg.freeze_blocks:
        freeze_lower_blocks(base, cfg.freeze_blocks)
    model = base
    if cfg.lora_rank > 0:
        model = add_lora(base, cfg.lora_rank, cfg.lora_alpha or 2 * cfg.lora_rank)
    return Built(model, base, lm.preprocess_train, lm.preprocess, lm.tokenizer, lm.name, lm.model_cfg)


def _blocks(base) -> list[list[torch.nn.Module]]:
    towers = []
    for tower in (getattr(base, "visual", None), base):
        tr = getattr(tower, "transformer", None)
        blocks = getattr(tr, "resblocks", None)
        if blocks is None:
            raise ValueError(f"--freeze-blocks needs transformer towers; {type(tower).__name__} has no resblocks")
        towers.append(list(blocks))
    return towers


def freeze_lower_blocks(base, n: int) -> None:
    """Freeze the first `n` residual blocks of both towers, plus the stems that feed them."""
    towers = _blocks(base)
    for blocks in towers:
        if n > len(blocks):
            raise ValueError(f"--freeze-blocks {n} but a tower has only {len(blocks)} blocks")
        for b in blocks[:n]:
            b.requires_grad_(False)
    stems = [getattr(base.visual, a, None) for a in ("conv1", "class_embedding", "positional_embedding", "ln_pre")]
    stems += [getattr(base, a, None) for a in ("token_embedding", "positional_embedding")]
    for s in stems:
        if isinstance(s, torch.nn.Module):
            s.requires_grad_(False)
        elif isinstance(s, torch.nn.Parameter):
            s.requires_grad_(False)


def add_lora(base, rank: int, alpha: float):
    from peft import LoraConfig, get_peft_model

    trainable_extra = [n for n, p in base.named_parameters() if n in ("logit_scale", "logit_bias") and p.requires_grad]
    conf = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=list(LORA_TARGETS),
                      bias="none")
    model = get_peft_model(base, conf)
    for n, p in base.named_parameters():  # the temperature and bias stay trainable
        if n in trainable_extra:
            p.requires_grad_(True)
    return model


def plain(built: Built):
    """A plain open_clip model with the LoRA merged in (a copy; training state untouched)."""
    if built.model is built.base:
        return built.base
    import copy

    return copy.deepcopy(built.model).merge_and_unload()


def param_groups(model, cfg: TrainConfig) -> list[dict]:
    """Towers at `lr` with weight decay on matrices; logit_scale/bias at `logit_lr` without decay.

    SigLIP's t and b start far from their useful values (b = −10) and at a tower-sized lr barely
    move in a short run, so they get their own, larger lr and no decay (open_clip also exempts them).
    """
    decay, no_decay, logit = [], [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        short = n.split(".")[-1]
        if short in ("logit_scale", "logit_bias"):
            logit.append(p)
        elif p.ndim < 2 or "ln" in n or "bias" in short or "embedding" in short:
            no_decay.append(p)
        else:
            decay.append(p)
    # siglip-rel learns β = −b/t in cosine units: a step of logit_lr in β is a step of t·logit_lr in b
    logit_lr = cfg.logit_lr * (cfg.siglip_init_scale if cfg.loss in RELATIVE_BIAS_LOSSES else 1.0)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay, "lr": cfg.lr},
              {"params": no_decay, "weight_decay": 0.0, "lr": cfg.lr},
              {"params": logit, "weight_decay": 0.0, "lr": logit_lr}]
    return [g for g in groups if g["params"]]


def n_trainable(model) -> tuple[int, int]:
    tot = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), tot
