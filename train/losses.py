"""Contrastive losses on one batch's image × text similarity matrix (pure torch, no I/O).

Every loss takes the same layout. Columns are all texts of the batch: each image's positive texts
(its caption, optionally more captions/pseudo-captions) and, with `--negatives static|ahnm`, its KG
hard negatives as extra columns (NegCLIP's batch layout: negatives only add columns). Then

    labels   [B, T]  +1 for a positive pair, -1 for a negative one
    weights  [B, T]  >= 0: 1 for positives, the negative's weight (AHNM or 1), 0 = masked
    row_weights [B]  per-sample weights (M4 balancing), scale each anchor's row

With labels = 2·I − 1 and unit weights (one caption per image, no extra columns) `clip_loss` is
open_clip's `ClipLoss` and `sigmoid_loss` is open_clip's `SigLipLoss`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def logits_of(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor,
              logit_bias: torch.Tensor | None = None) -> torch.Tensor:
    logits = logit_scale * image_features @ text_features.T
    if logit_bias is not None:
        logits = logits + logit_bias
    return logits


def sigmoid_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None,
                 row_weights: torch.Tensor | None = None) -> torch.Tensor:
    """SigLIP / fair sigmoid loss: (1/B) Σ_i r_i Σ_j w_ij · softplus(−z_ij · logit_ij).

    softplus(−x) = −log σ(x), the same per-pair term as open_clip's SigLipLoss; normalised by the
    number of anchors B (not by Σ r_i) so that unit weights reproduce SigLIP exactly.
    """
    per_pair = F.softplus(-labels * logits)
    if weights is not None:
        per_pair = per_pair * weights
    per_row = per_pair.sum(dim=1)
    if row_weights is not None:
        per_row = per_row * row_weights
    return per_row.sum() / logits.shape[0]


def _multi_positive_ce(logits: torch.Tensor, positive: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per row: −log Σ_pos e^l + log Σ_j w_j e^l (weights inside the partition function, as HCL).

    Masked entries (w = 0) drop out of both sums; with one positive and unit weights this is CE.
    """
    neg_inf = torch.finfo(logits.dtype).min
    valid = weights > 0
    num = torch.where(positive & valid, logits, torch.full_like(logits, neg_inf)).logsumexp(dim=1)
    log_w = torch.where(valid, weights.clamp_min(1e-30).log(), torch.zeros_like(weights))
    den = torch.where(valid, logits + log_w, torch.full_like(logits, neg_inf)).logsumexp(dim=1)
    return den - num


def clip_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None,
              primary: torch.Tensor | None = None, row_weights: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE both ways, (i2t + t2i) / 2, open_clip's `ClipLoss` for the square unit case.

    image→text: every column of the row competes (extra KG negatives included, AHNM weights in
    the partition function, several positives summed in the numerator). text→image: only each
    image's primary caption (column `primary[i]`) is a query, over the images, as NegCLIP does —
    hard-negative captions are never queries; masked pairs stay masked, weights are not used.
    """
    B, T = logits.shape
    if weights is None:
        weights = torch.ones_like(logits)
    if primary is None:
        primary = torch.arange(B, device=logits.device)
    positive = labels > 0
    i2t = _multi_positive_ce(logits, positive, weights)
    cols = logits[:, primary].T  # [B texts, B images]
    t2i = _multi_positive_ce(cols, positive[:, primary].T, (weights[:, primary].T > 0).to(logits.dtype))
    if row_weights is not None:
        i2t, t2i = i2t * row_weights, t2i * row_weights
    return (i2t.sum() + t2i.sum()) / (2 * B)


def association_bias(image_features: torch.Tensor, text_features: torch.Tensor,
                     groups: dict[str, torch.Tensor], text_owner: torch.Tensor) -> torch.Tensor:
    """R_fair: mean squared gap between sensitive groups in mean image–concept cosine.

    For each attribute (e.g. gender) with at least two groups present, each text c of the batch is
    a concept; μ_g(c) is the mean cosine between c and the images of group g, leaving out c's own
    image (a caption describes its image, which is not an association). The penalty is the mean over
    attributes, concepts and group pairs of (μ_g(c) − μ_h(c))². Unknown group = −1. Zero when no
    attribute has two groups in the batch.
    """
    cos = image_features @ text_features.T  # [B, T]
    B = cos.shape[0]
    not_own = text_owner[None, :] != torch.arange(B, device=cos.device)[:, None]
    terms = []
    for g in groups.values():
        ids = [int(v) for v in torch.unique(g) if v >= 0]
        if len(ids) < 2:
            continue
        means, present = [], []
        for gid in ids:
            m = (g == gid)[:, None] & not_own
            cnt = m.sum(0)
            means.append((cos * m).sum(0) / cnt.clamp_min(1))
            present.append(cnt > 0)
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)):
                both = present[a] & present[b]
                if both.any():
                    terms.append(((means[a] - means[b]) ** 2)[both].mean())
    if not terms:
        return image_features.sum() * 0.0
    return torch.stack(terms).mean()


FAIR_LOSSES = ("fair-siglip", "fair-clip")


def compute_loss(kind: str, image_features: torch.Tensor, text_features: torch.Tensor,
                 logit_scale: torch.Tensor, logit_bias: torch.Tensor | None, labels: torch.Tensor,
                 weights: torch.Tensor | None, primary: torch.Tensor, row_weights: torch.Tensor | None,
                 groups: dict[str, torch.Tensor] | None = None, text_owner: torch.Tensor | None = None,
                 fair_lambda: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The configured loss and its parts (`contrastive`, `fair`); `kind` is clip|siglip|fair-siglip|fair-clip.

    `fair-clip` is the softmax-normalised variant of the fair loss: the same positives, KG columns,
    AHNM weights, row weights and λ·R_fair, on InfoNCE instead of the per-pair sigmoid.
    """
    logits = logits_of(image_features, text_features, logit_scale, logit_bias)
    if kind in ("clip", "fair-clip"):
        main = clip_loss(logits, labels, weights, primary, row_weights if kind == "fair-clip" else None)
    elif kind in ("siglip", "fair-siglip"):
        if logit_bias is None:
            raise ValueError(f"--loss {kind} needs a model with logit_bias (created with init_logit_bias)")
        main = sigmoid_loss(logits, labels, weights, row_weights if kind == "fair-siglip" else None)
    else:
        raise ValueError(f"unknown loss {kind!r}")
    parts = {"contrastive": main}
    total = main
    if kind in FAIR_LOSSES and fair_lambda > 0 and groups and text_owner is not None:
        fair = association_bias(image_features, text_features, groups, text_owner)
        parts["fair"] = fair
        total = total + fair_lambda * fair
    return total, parts
