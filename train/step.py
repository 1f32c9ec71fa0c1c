"""One training step's maths around the model: features -> (gathered) layout -> AHNM -> loss.

With DDP every rank gathers all image and text features (differentiable `all_gather`) and the
batch metadata, and computes the loss of the *global* batch. The backward of all_gather sums the
gradient over ranks (world_size × the true one for local features) and DDP averages parameter
gradients over ranks, so the update equals a single process on the global batch (tested).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from train import ahnm, losses
from train.config import TrainConfig
from train.data import layout


def _world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_cat(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` over ranks along dim 0 (sizes may differ), keeping the gradient path."""
    import torch.distributed as dist
    from torch.distributed.nn.functional import all_gather

    _, world = _world()
    if world == 1:
        return x
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    m = int(max(int(s) for s in sizes))
    padded = F.pad(x, (0, 0, 0, m - x.shape[0]))
    parts = all_gather(padded)
    return torch.cat([p[: int(s)] for p, s in zip(parts, sizes)])


def gather_meta(meta: dict[str, Any]) -> list[dict[str, Any]]:
    import torch.distributed as dist

    _, world = _world()
    if world == 1:
        return [meta]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, meta)
    return out


def encode(model, images: torch.Tensor, tokens: torch.Tensor):
    """(image_features, text_features, logit_scale, logit_bias) through the (DDP/peft) wrapper."""
    out = model(images, tokens)
    if isinstance(out, dict):
        return out["image_features"], out["text_features"], out["logit_scale"], out.get("logit_bias")
    return out[0], out[1], out[2], (out[3] if len(out) > 3 else None)


def loss_from_features(img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor,
                       logit_bias: torch.Tensor | None, metas: list[dict[str, Any]], cfg: TrainConfig,
                       progress: float) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict]:
    """Loss of a global batch from gathered, L2-normalised features (float32 maths)."""
    img, txt = img.float(), txt.float()
    cols, near_dup, groups, row_w, facts = layout(metas)
    dev = img.device
    cols = ahnm.Columns(*(t.to(dev) for t in (cols.owner, cols.role, cols.neg_type, cols.text_id, cols.primary)))
    with torch.no_grad():
        cos = img @ txt.T
    labels, weights, stats = ahnm.targets(cfg.negatives, cols, img.shape[0], cos, txt, near_dup.to(dev),
                                          progress, cfg.ahnm, facts.to(dev))
    strata = fact_strata(facts.contrast.to(dev), cols.primary) if cfg.fair_strata else None
    total, parts = losses.compute_loss(
        cfg.loss, img, txt, logit_scale.float(), None if logit_bias is None else logit_bias.float(),
        labels, None if cfg.negatives == "none" else weights, cols.primary, row_w.to(dev),
        {k: v.to(dev) for k, v in groups.items()}, cols.owner, cfg.fair_lambda,
        cfg.kg_softmax if cfg.negatives != "none" else 0.0, cfg.multi_positive, strata, cols.role == ahnm.ROLE_SOURCE)
    stats["n_texts"] = int(txt.shape[0])
    stats["n_images"] = int(img.shape[0])
    return total, parts, stats


def fact_strata(contrast: torch.Tensor, primary: torch.Tensor) -> torch.Tensor:
    """[B, T] stratum ids for the fair term: equal ids <=> the same subset of text t's contrast classes
    (fact words: colours, sizes, relations ...) is named by image i's primary caption."""
    B, T, V = primary.shape[0], contrast.shape[0], contrast.shape[1]
    if V == 0:
        return torch.zeros(B, T, dtype=torch.long, device=contrast.device)
    img = contrast[primary]
    if V <= 62:  # the shared subset as a bit pattern
        bits = 2 ** torch.arange(V, device=contrast.device, dtype=torch.long)
        return ((img.long() * bits)[:, None, :] & (contrast.long() * bits)[None, :, :]).sum(-1)
    shared = img[:, None, :] & contrast[None, :, :]  # [B, T, V]
    return torch.unique(shared.reshape(B * T, V), dim=0, return_inverse=True)[1].reshape(B, T)


def forward_loss(model, batch: dict[str, Any], cfg: TrainConfig, progress: float, device: str,
                 autocast_dtype: torch.dtype | None):
    images = batch["images"].to(device, non_blocking=True)
    tokens = batch["tokens"].to(device, non_blocking=True)
    dev_type = "cuda" if str(device).startswith("cuda") else "cpu"
    with torch.autocast(dev_type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        img, txt, scale, bias = encode(model, images, tokens)
    img, txt = gather_cat(img), gather_cat(txt)
    metas = gather_meta(batch["meta"])
    return loss_from_features(img, txt, scale, bias, metas, cfg, progress)
