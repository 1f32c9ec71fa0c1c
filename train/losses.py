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


def _multi_positive_ce(logits: torch.Tensor, positive: torch.Tensor, weights: torch.Tensor,
                       mode: str = "sum") -> torch.Tensor:
    """Softmax cross-entropy of each row with several positives; weights inside the partition function
    (as HCL), masked entries (w = 0) drop out everywhere. With one positive and unit weights both modes
    are CE.

    `sum`:  −log Σ_pos e^l + log Σ_j w_j e^l — the positives share one numerator, so the row is
            satisfied once its *easiest* positive wins (SupCon's L_in).
    `each`: mean over positives p of −log e^l_p / (e^l_p + Σ_neg w e^l) = softplus(lse_neg − l_p) —
            every positive must beat the negatives on its own, and positives never compete with
            each other (SupCon's L_out without the other positives in the denominator). A caption
            that leaves the relation out cannot stand in for the one that states it.
    """
    neg_inf = torch.finfo(logits.dtype).min
    valid = weights > 0
    log_w = torch.where(valid, weights.clamp_min(1e-30).log(), torch.zeros_like(weights))
    if mode == "each":
        pos = positive & valid
        lse_neg = torch.where(valid & ~positive, logits + log_w, torch.full_like(logits, neg_inf)).logsumexp(dim=1)
        per = torch.nn.functional.softplus(lse_neg[:, None] - logits)
        return torch.where(pos, per, torch.zeros_like(per)).sum(dim=1) / pos.sum(dim=1).clamp_min(1)
    num = torch.where(positive & valid, logits, torch.full_like(logits, neg_inf)).logsumexp(dim=1)
    den = torch.where(valid, logits + log_w, torch.full_like(logits, neg_inf)).logsumexp(dim=1)
    return den - num


def clip_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None,
              primary: torch.Tensor | None = None, row_weights: torch.Tensor | None = None,
              multi_positive: str = "sum") -> torch.Tensor:
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
    i2t = _multi_positive_ce(logits, positive, weights, multi_positive)
    cols = logits[:, primary].T  # [B texts, B images]
    t2i = _multi_positive_ce(cols, positive[:, primary].T, (weights[:, primary].T > 0).to(logits.dtype),
                             multi_positive)
    if row_weights is not None:
        i2t, t2i = i2t * row_weights, t2i * row_weights
    return (i2t.sum() + t2i.sum()) / (2 * B)


def association_bias(image_features: torch.Tensor, text_features: torch.Tensor,
                     groups: dict[str, torch.Tensor], text_owner: torch.Tensor,
                     strata: torch.Tensor | None = None) -> torch.Tensor:
    """R_fair: mean squared gap between sensitive groups in mean image–concept cosine.

    For each attribute (e.g. gender) with at least two groups present, each text c of the batch is
    a concept; μ_g(c) is the mean cosine between c and the images of group g, leaving out c's own
    image (a caption describes its image, which is not an association). The penalty is the mean over
    attributes, concepts and group pairs of (μ_g(c) − μ_h(c))². Unknown group = −1. Zero when no
    attribute has two groups in the batch.

    `strata` [B, T] (optional): compare groups only among images in the same stratum for the concept
    — e.g. images whose captions share the same fact words with it (`train.step`: the contrast classes
    both name). Without it, a group that really shows the concept more often (the planted correlation
    of the training data) is penalised for the content itself; within a stratum the images agree on the
    concept's content and a gap can only come from the group.
    """
    cos = image_features @ text_features.T  # [B, T]
    B, T = cos.shape
    not_own = text_owner[None, :] != torch.arange(B, device=cos.device)[:, None]
    if strata is None:
        cells, n_cells = torch.arange(T, device=cos.device)[None, :].expand(B, T), T
    else:  # one cell per (concept, stratum): sums by index_add, O(B·T) whatever the number of strata
        values, inverse = torch.unique(strata, return_inverse=True)
        cells, n_cells = inverse + len(values) * torch.arange(T, device=cos.device)[None, :], len(values) * T
    terms = []
    for g in groups.values():
        ids = [int(v) for v in torch.unique(g) if v >= 0]
        if len(ids) < 2:
            continue
        means, present = [], []
        for gid in ids:
            m = (g == gid)[:, None] & not_own
            sums = cos.new_zeros(n_cells).index_add(0, cells[m], cos[m])
            cnt = torch.zeros(n_cells, device=cos.device).index_add(0, cells[m], torch.ones_like(cos[m]))
            means.append(sums / cnt.clamp_min(1))
            present.append(cnt > 0)
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)):
                both = present[a] & present[b]
                if both.any():
                    terms.append(((means[a] - means[b]) ** 2)[both].mean())
    if not terms:
        return image_features.sum() * 0.0
    return torch.stack(terms).mean()


def kg_softmax_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None, owner: torch.Tensor,
                    row_weights: torch.Tensor | None = None, multi_positive: str = "sum") -> torch.Tensor:
    """CE-CLIP's hard-negative term: for each image, a softmax over its own texts only — its positive
    captions against its own KG hard negatives (the columns it owns with label −1).

        L = (1/|R|) Σ_{i∈R} r_i · (−log Σ_{own pos} e^l + log Σ_{own kept} w e^l)

    R = images with at least one kept own negative; AHNM weights enter the partition function as in
    `clip_loss`. Unlike NegCLIP's extra columns (one negative among the whole batch's texts), the
    gradient here goes only to the comparison the compositional benchmarks make: this image, its
    caption, and the same caption with one fact changed.
    """
    B, T = logits.shape
    if weights is None:
        weights = torch.ones_like(logits)
    own = owner[None, :] == torch.arange(B, device=logits.device)[:, None]
    w = torch.where(own, weights, torch.zeros_like(weights))
    has_neg = ((labels < 0) & own & (w > 0)).any(dim=1)
    if not has_neg.any():
        return logits.sum() * 0.0
    per_row = _multi_positive_ce(logits[has_neg], (labels > 0)[has_neg], w[has_neg], multi_positive)
    if row_weights is not None:
        per_row = per_row * row_weights[has_neg]
    return per_row.sum() / has_neg.sum()


SIGMOID_LOSSES = ("siglip", "fair-siglip", "siglip-rel", "fair-siglip-rel")
SOFTMAX_LOSSES = ("clip", "fair-clip")
FAIR_LOSSES = ("fair-siglip", "fair-clip", "fair-siglip-rel")
RELATIVE_BIAS_LOSSES = ("siglip-rel", "fair-siglip-rel")


def compute_loss(kind: str, image_features: torch.Tensor, text_features: torch.Tensor,
                 logit_scale: torch.Tensor, logit_bias: torch.Tensor | None, labels: torch.Tensor,
                 weights: torch.Tensor | None, primary: torch.Tensor, row_weights: torch.Tensor | None,
                 groups: dict[str, torch.Tensor] | None = None, text_owner: torch.Tensor | None = None,
                 fair_lambda: float = 0.0, kg_softmax: float = 0.0, multi_positive: str = "sum",
                 fair_strata: torch.Tensor | None = None, kg_only: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The configured loss and its parts (`contrastive`, `kg_softmax`, `fair`).

    `kind`: clip | fair-clip (InfoNCE) | siglip | fair-siglip (per-pair sigmoid) | siglip-rel |
    fair-siglip-rel (the sigmoid with a fixed temperature t and a bias learnt in cosine units,
    logits = t·(cos − β) with b = −t·β; the model and `train.model` keep t fixed, so the loss
    maths are the sigmoid's). The fair-* kinds add the row weights and λ·R_fair. `kg_softmax` > 0
    adds μ·`kg_softmax_loss` (CE-CLIP's per-image softmax over own positives and KG negatives) to any kind.
    `multi_positive` (sum | each) is how the softmax terms treat several positives of one image.
    `kg_only` [T] (optional): columns that take part in the `kg_softmax` term only (the KG negatives'
    source captions with `--source-positives kg`); the contrastive loss leaves them out.
    """
    logits = logits_of(image_features, text_features, logit_scale, logit_bias)
    fair = kind in FAIR_LOSSES
    kg_weights = weights
    if kg_only is not None and bool(kg_only.any()):
        base = torch.ones_like(logits) if weights is None else weights
        weights = torch.where(kg_only[None, :], torch.zeros_like(base), base)
    if kind in SOFTMAX_LOSSES:
        main = clip_loss(logits, labels, weights, primary, row_weights if fair else None, multi_positive)
    elif kind in SIGMOID_LOSSES:
        if logit_bias is None:
            raise ValueError(f"--loss {kind} needs a model with logit_bias (created with init_logit_bias)")
        main = sigmoid_loss(logits, labels, weights, row_weights if fair else None)
    else:
        raise ValueError(f"unknown loss {kind!r}")
    parts = {"contrastive": main}
    total = main
    if kg_softmax > 0:
        if text_owner is None:
            raise ValueError("kg_softmax needs the owner of every text column")
        kg = kg_softmax_loss(logits, labels, kg_weights, text_owner, row_weights if fair else None, multi_positive)
        parts["kg_softmax"] = kg
        total = total + kg_softmax * kg
    if fair and fair_lambda > 0 and groups and text_owner is not None:
        bias_term = association_bias(image_features, text_features, groups, text_owner, fair_strata)
        parts["fair"] = bias_term
        total = total + fair_lambda * bias_term
    return total, parts
