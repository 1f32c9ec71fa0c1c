"""AHNM: adaptive hard-negative mining (METHOD.md, train), pure torch on detached similarities.

Three parts driven by training progress p ∈ [0, 1]:
1. curriculum — HCL importance weights w_ij ∝ exp(β(p)·cos_ij) over an anchor's negatives with β
   rising linearly from 0 to β_max (`beta`), or a band over the batch's margin quantiles moving
   from the middle of the distribution to the hardest end (`band`); normalised to mean 1 per row
   so the loss scale does not drift with β;
2. loss-adaptive weights — negatives already separated by more than `easy_margin` fade (sigmoid),
   in-batch negatives whose cosine beats the positive's by more than `cap_margin` look like label
   noise and are capped at `cap_weight` (KG negatives are verified false, so never capped);
3. false-negative guard — what the *data* says is the same (`Facts`, train/facts.py): a text equal
   to any caption or pseudo-caption of the anchor's image, or a caption of another image with the
   same scene graph, is turned positive (FFF); KG negatives are at most masked, never turned
   positive. What only an *embedding* says is the same (text cosine ≥ `guard_text_cos` that stands
   out from the batch, once p ≥ `guard_after`; clusterbuild's near-duplicate flags) is masked, and
   never for a pair the data says differs in a fact: the image's own KG negatives, and captions
   that name a different attribute or relation (`contrast.json`) or the same words in another
   order. Those are the compositional negatives AHNM exists to weight up; a word-order-blind text
   tower puts them at cosine ≈ 1, and masking them kept the model from ever learning relations
   (docs/RESULTS.md).
Everything here is computed without gradient: weights are constants of the loss, as in HCL.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from train.config import AHNMConfig

ROLE_PRIMARY, ROLE_POSITIVE, ROLE_KG, ROLE_SOURCE = 0, 1, 2, 3


@dataclass
class Columns:
    """What the loss needs to know about each text column of a batch."""

    owner: torch.Tensor  # [T] index of the image the text belongs to
    role: torch.Tensor  # [T] ROLE_PRIMARY | ROLE_POSITIVE | ROLE_KG | ROLE_SOURCE (a KG negative's source caption)
    neg_type: torch.Tensor  # [T] index into contract.NEGATIVE_TYPES, −1 for captions
    text_id: torch.Tensor  # [T] equal ids <=> equal normalised text
    primary: torch.Tensor  # [B] column of each image's primary caption


@dataclass
class Facts:
    """What the data (not the model) says about a batch's texts and images (train/facts.py)."""

    scene: torch.Tensor  # [B] scene-graph id; equal ids <=> the same scene; −1 unknown
    known_pos: torch.Tensor  # [B, T] text t equals a caption or pseudo-caption of image i
    bag: torch.Tensor  # [T] word-bag id: equal ids <=> the same content words, maybe in another order
    order: torch.Tensor  # [T] equal ids <=> the same content words in the same order
    contrast: torch.Tensor  # [T, V] the contrast classes (attribute / relation words) each text names

    def to(self, device) -> Facts:
        return Facts(*(t.to(device) for t in (self.scene, self.known_pos, self.bag, self.order, self.contrast)))


def differ(facts: Facts) -> torch.Tensor:
    """[T, T]: the two texts are known to state different facts: each names an attribute/relation
    class the other does not, or they say the same content words in another order."""
    m = facts.contrast.float()
    has_extra = (m @ (1 - m).T) > 0  # [t, u]: t names a class u does not
    reordered = (facts.bag[:, None] == facts.bag[None, :]) & (facts.order[:, None] != facts.order[None, :])
    return (has_extra & has_extra.T) | reordered


def base_labels(cols: Columns, batch_size: int) -> torch.Tensor:
    """+1 where the text is a caption of the row's image, −1 elsewhere (KG negatives included)."""
    rows = torch.arange(batch_size, device=cols.owner.device)[:, None]
    pos = (cols.owner[None, :] == rows) & (cols.role[None, :] != ROLE_KG)
    return pos.float() * 2 - 1


def guard(labels: torch.Tensor, cols: Columns, near_dup: torch.Tensor | None,
          text_features: torch.Tensor | None, progress: float, cfg: AHNMConfig, facts: Facts | None = None
          ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """False-negative guard: (labels', mask [B,T] of kept pairs, stats)."""
    B, T = labels.shape
    dev = labels.device
    pos = (labels > 0).float()
    same = (cols.text_id[None, :] == cols.text_id[:, None]).float()
    ident = (pos @ same) > 0  # [B, T]: column t has the same normalised text as a positive of row i
    is_kg = (cols.role == ROLE_KG)[None, :].expand(B, T)
    own = cols.owner[None, :] == torch.arange(B, device=dev)[:, None]
    same_scene = torch.zeros_like(ident)
    known_differ = torch.zeros(T, T, dtype=torch.bool, device=dev)
    if facts is not None:
        ident = ident | facts.known_pos  # any caption/pseudo-caption of the image, sampled or not
        if cfg.guard_scenes:
            sc = facts.scene
            same_scene = (sc[:, None] >= 0) & (sc[:, None] == sc[cols.owner][None, :]) & ~is_kg
        known_differ = differ(facts)
    close = torch.zeros_like(ident)
    if text_features is not None and progress >= cfg.guard_after:
        tf = text_features.detach().float()
        tcos = tf @ tf.T
        off = tcos[~torch.eye(T, dtype=torch.bool, device=tcos.device)]
        typical = off.median() if off.numel() else tcos.new_tensor(0.0)
        rel = (tcos - typical) / (1 - typical).clamp_min(1e-6)
        near = (tcos >= cfg.guard_text_cos) & (rel >= cfg.guard_text_rel) & ~known_differ
        close = ((pos @ near.float()) > 0) & ~ident & ~(is_kg & own)
    dup_cols = torch.zeros_like(ident)
    if near_dup is not None and cfg.guard_dups != "ignore":
        dup_cols = near_dup[:, cols.owner] & ~is_kg
        if facts is not None:  # the scene graphs say the flagged image shows something else
            sc = facts.scene
            dup_cols &= ~((sc[:, None] >= 0) & (sc[cols.owner][None, :] >= 0) & (sc[:, None] != sc[cols.owner][None, :]))
    neg = labels < 0
    trusted_dups = dup_cols if cfg.guard_dups == "positive" else torch.zeros_like(dup_cols)
    # exact text match, the same scene graph, or a trusted duplicate flag: FFF reassignment
    sure = neg & (ident | same_scene | trusted_dups)
    # an embedding-only match is a guess (of the model being trained, or of the embedder that flagged
    # the duplicates): masking it can only drop a negative, turning it positive could teach the model
    # the embedder's mistakes
    unsure = neg & (close | dup_cols) & ~sure
    if cfg.guard_action == "positive":
        flip = sure & ~is_kg
        masked = (sure & is_kg) | unsure
    else:
        flip = torch.zeros_like(sure)
        masked = sure | unsure
    new_labels = labels.clone()
    new_labels[flip] = 1.0
    kept = ~masked
    n_neg = max(int(neg.sum()), 1)
    stats = {"share_turned_positive": float(flip.sum()) / n_neg, "share_masked": float(masked.sum()) / n_neg,
             "share_guard_text": float((neg & (ident | close)).sum()) / n_neg,
             "share_guard_scene": float((neg & same_scene).sum()) / n_neg,
             "share_guard_dup": float((neg & dup_cols).sum()) / n_neg,
             "guarded": guarded_by_type(neg, masked | flip, cols)}
    return new_labels, kept, stats


def guarded_by_type(neg: torch.Tensor, touched: torch.Tensor, cols: Columns) -> dict[str, float]:
    """Share of each kind of negative pair the guard masked or turned positive: per KG type, for the
    image's *own* KG negatives and for other images' ones, and for in-batch captions."""
    from clusterbuild.contract import NEGATIVE_TYPES

    B = neg.shape[0]
    own = cols.owner[None, :] == torch.arange(B, device=neg.device)[:, None]
    out: dict[str, float] = {}
    kinds = [("inbatch", neg & (cols.role != ROLE_KG)[None, :])]
    for k, name in enumerate(NEGATIVE_TYPES):
        of_type = neg & (cols.neg_type == k)[None, :] & (cols.role == ROLE_KG)[None, :]
        kinds += [(f"{name}.own", of_type & own), (f"{name}.other", of_type & ~own)]
    for name, m in kinds:
        n = int(m.sum())
        if n:
            out[name] = float((touched & m).sum()) / n
    return out


def beta_at(progress: float, cfg: AHNMConfig) -> float:
    return cfg.beta_max * min(1.0, max(0.0, progress) / max(cfg.ramp, 1e-9))


def band_at(progress: float, cfg: AHNMConfig) -> tuple[float, float]:
    """Quantile band of negative margins: centred at 0.5 at p = 0, at the hardest end at p = ramp."""
    t = min(1.0, max(0.0, progress) / max(cfg.ramp, 1e-9))
    half = cfg.band_width / 2
    centre = 0.5 + t * (1.0 - half - 0.5)
    return max(0.0, centre - half), min(1.0, centre + half)


def _row_mean_normalise(w: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    cnt = mask.sum(1, keepdim=True).clamp_min(1)
    mean = (w * mask).sum(1, keepdim=True) / cnt
    return torch.where(mask, w / mean.clamp_min(1e-12), torch.zeros_like(w))


def weights(cos: torch.Tensor, labels: torch.Tensor, kept: torch.Tensor, cols: Columns,
            progress: float, cfg: AHNMConfig) -> tuple[torch.Tensor, dict]:
    """AHNM weights [B, T] (1 on positives, 0 on masked pairs) and the step's statistics."""
    cos = cos.detach().float()
    posm = (labels > 0) & kept
    negm = (labels < 0) & kept
    pos_sim = (cos * posm).sum(1, keepdim=True) / posm.sum(1, keepdim=True).clamp_min(1)
    margin = cos - pos_sim  # > 0: the negative scores above the positive
    stats: dict = {}
    if cfg.curriculum == "beta":
        beta = beta_at(progress, cfg)
        stats["beta"] = beta
        shifted = torch.where(negm, cos, torch.full_like(cos, -1e4))
        imp = torch.exp(beta * (shifted - shifted.max(1, keepdim=True).values))
    else:
        lo, hi = band_at(progress, cfg)
        stats["band_lo"], stats["band_hi"] = lo, hi
        m = margin[negm]
        if m.numel():
            qlo, qhi = torch.quantile(m, lo), torch.quantile(m, hi)
            inband = (margin >= qlo) & (margin <= qhi)
        else:
            inband = torch.zeros_like(negm)
        imp = torch.where(inband, torch.ones_like(cos), torch.full_like(cos, cfg.band_floor))
    imp = _row_mean_normalise(imp, negm)
    fade = cfg.min_weight + (1 - cfg.min_weight) * torch.sigmoid((margin + cfg.easy_margin) / cfg.fade_tau)
    w = imp * fade
    is_kg = (cols.role == ROLE_KG)[None, :].expand_as(w)
    w = torch.where(is_kg, w * cfg.kg_weight, w)
    capped = negm & ~is_kg & (margin > cfg.cap_margin) & (w > cfg.cap_weight)
    w = torch.where(capped, torch.full_like(w, cfg.cap_weight), w).clamp(max=cfg.max_weight)
    out = torch.where(negm, w, posm.float())
    n_neg = max(int(negm.sum()), 1)
    stats.update(margin_stats(margin, negm, is_kg, cols, out, cfg))
    stats["share_capped"] = float(capped.sum()) / n_neg
    stats["share_faded"] = float((negm & (fade < 0.5)).sum()) / n_neg
    stats["mean_weight"] = float(out[negm].mean()) if negm.any() else 0.0
    return out, stats


def margin_stats(margin: torch.Tensor, negm: torch.Tensor, is_kg: torch.Tensor, cols: Columns,
                 w: torch.Tensor, cfg: AHNMConfig) -> dict:
    """Mean margin overall / in-batch / per KG negative type, and a margin histogram on [−1, 1]."""
    from clusterbuild.contract import NEGATIVE_TYPES

    def mean(mask: torch.Tensor) -> float | None:
        return float(margin[mask].mean()) if mask.any() else None

    per_type = {}
    for k, name in enumerate(NEGATIVE_TYPES):
        m = negm & (cols.neg_type[None, :] == k)
        if m.any():
            per_type[name] = {"margin": float(margin[m].mean()), "weight": float(w[m].mean()),
                              "count": int(m.sum())}
    inb = negm & ~is_kg
    hist = torch.histc(margin[negm].clamp(-1, 1), bins=cfg.hist_bins, min=-1, max=1) if negm.any() \
        else torch.zeros(cfg.hist_bins)
    return {"mean_margin": mean(negm), "mean_margin_inbatch": mean(inb), "mean_margin_kg": mean(negm & is_kg),
            "inbatch": {"margin": mean(inb), "weight": float(w[inb].mean()) if inb.any() else None,
                        "count": int(inb.sum())},
            "per_type": per_type, "margin_hist": [int(x) for x in hist.tolist()]}


def targets(mode: str, cols: Columns, batch_size: int, cos: torch.Tensor, text_features: torch.Tensor | None,
            near_dup: torch.Tensor | None, progress: float, cfg: AHNMConfig, facts: Facts | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(labels, weights, stats) for `--negatives none|static|ahnm`.

    none/static: plain labels, uniform weights (static = NegCLIP: KG negatives as extra columns,
    weight 1); the stats still report margins so the runs can be compared. ahnm: guard + weights.
    """
    labels = base_labels(cols, batch_size)
    if mode != "ahnm":
        kept = torch.ones_like(labels, dtype=torch.bool)
        negm = labels < 0
        pos_sim = (cos * (labels > 0)).sum(1, keepdim=True) / (labels > 0).sum(1, keepdim=True).clamp_min(1)
        is_kg = (cols.role == ROLE_KG)[None, :].expand_as(labels)
        w = torch.ones_like(labels)
        stats = margin_stats(cos.detach().float() - pos_sim.detach().float(), negm, is_kg, cols, w, cfg)
        stats.update(share_masked=0.0, share_turned_positive=0.0, share_capped=0.0)
        return labels, w, stats
    labels, kept, gstats = guard(labels, cols, near_dup, text_features, progress, cfg, facts)
    w, stats = weights(cos, labels, kept, cols, progress, cfg)
    stats.update(gstats)
    return labels, w, stats
