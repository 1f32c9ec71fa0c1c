"""Each loss against a direct, slow reference (python loops), values and gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss, SigLipLoss

from train import losses


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _feats(B, T, D=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = F.normalize(torch.randn(B, D, generator=g), dim=-1).requires_grad_()
    txt = F.normalize(torch.randn(T, D, generator=g), dim=-1).requires_grad_()
    return img, txt


def _layout(B, T, seed=1):
    """Random multi-positive labels, weights with masked entries, row weights."""
    g = torch.Generator().manual_seed(seed)
    owner = torch.arange(T) % B
    labels = torch.where(owner[None, :] == torch.arange(B)[:, None], 1.0, -1.0)
    labels[:, B:][torch.rand(B, T - B, generator=g) < 0.2] = -1.0  # extra columns mostly negative
    weights = torch.rand(B, T, generator=g) * 2
    weights[labels > 0] = 1.0
    weights[(torch.rand(B, T, generator=g) < 0.15) & (labels < 0)] = 0.0
    row_w = torch.rand(B, generator=g) + 0.5
    return labels, weights, row_w


def _sigmoid_ref(img, txt, t, b, labels, weights, row_w):
    B, T = labels.shape
    total = 0.0
    for i in range(B):
        row = 0.0
        for j in range(T):
            s = t * sum(img[i, d] * txt[j, d] for d in range(img.shape[1])) + b
            row = row + weights[i, j] * -torch.log(torch.sigmoid(labels[i, j] * s))
        total = total + row_w[i] * row
    return total / B


def _clip_ref(img, txt, t, labels, weights, primary, row_w):
    B, T = labels.shape
    sim = [[t * sum(img[i, d] * txt[j, d] for d in range(img.shape[1])) for j in range(T)] for i in range(B)]
    i2t = 0.0
    for i in range(B):
        num = sum(torch.exp(sim[i][j]) for j in range(T) if labels[i, j] > 0 and weights[i, j] > 0)
        den = sum(weights[i, j] * torch.exp(sim[i][j]) for j in range(T) if weights[i, j] > 0)
        i2t = i2t + row_w[i] * -torch.log(num / den)
    t2i = 0.0
    for k in range(B):
        c = int(primary[k])
        num = sum(torch.exp(sim[j][c]) for j in range(B) if labels[j, c] > 0 and weights[j, c] > 0)
        den = sum(torch.exp(sim[j][c]) for j in range(B) if weights[j, c] > 0)
        t2i = t2i + row_w[k] * -torch.log(num / den)
    return (i2t + t2i) / (2 * B)


def _grads(fn, img, txt):
    img.grad = txt.grad = None
    val = fn()
    val.backward()
    return val.detach(), img.grad.clone(), txt.grad.clone()


def test_sigmoid_loss_matches_loop_reference():
    B, T = 5, 9
    labels, weights, row_w = _layout(B, T)
    img, txt = _feats(B, T)
    t, b = torch.tensor(7.0), torch.tensor(-3.0)
    fast = _grads(lambda: losses.sigmoid_loss(losses.logits_of(img, txt, t, b), labels, weights, row_w), img, txt)
    slow = _grads(lambda: _sigmoid_ref(img, txt, t, b, labels, weights, row_w), img, txt)
    for a, s in zip(fast, slow):
        assert torch.allclose(a, s, atol=1e-10)


def test_clip_loss_matches_loop_reference():
    B, T = 4, 10
    labels, weights, row_w = _layout(B, T, seed=3)
    img, txt = _feats(B, T, seed=2)
    t = torch.tensor(5.0)
    primary = torch.arange(B)
    fast = _grads(lambda: losses.clip_loss(losses.logits_of(img, txt, t), labels, weights, primary, row_w), img, txt)
    slow = _grads(lambda: _clip_ref(img, txt, t, labels, weights, primary, row_w), img, txt)
    for a, s in zip(fast, slow):
        assert torch.allclose(a, s, atol=1e-10)


def test_clip_square_equals_open_clip_cliploss():
    B = 6
    img, txt = _feats(B, B, seed=4)
    t = torch.tensor(1 / 0.07)
    labels = torch.eye(B) * 2 - 1
    ours = _grads(lambda: losses.clip_loss(losses.logits_of(img, txt, t), labels), img, txt)
    ref = _grads(lambda: ClipLoss()(img, txt, t), img, txt)
    for a, s in zip(ours, ref):
        assert torch.allclose(a, s, atol=1e-10)


def test_fair_siglip_reduces_to_siglip_and_open_clip():
    """One positive, no negatives, no weights, λ = 0: fair-siglip = siglip = open_clip SigLipLoss."""
    B = 6
    img, txt = _feats(B, B, seed=5)
    t, b = torch.tensor(math.log(10)).exp(), torch.tensor(-10.0)
    labels = torch.eye(B) * 2 - 1
    primary = torch.arange(B)
    owner = torch.arange(B)
    groups = {"gender": torch.tensor([0, 1, 0, 1, -1, 0])}

    def run(kind):
        return lambda: losses.compute_loss(kind, img, txt, t, b, labels, None, primary, None, groups,
                                           owner, fair_lambda=0.0)[0]

    fair = _grads(run("fair-siglip"), img, txt)
    sig = _grads(run("siglip"), img, txt)
    ref = _grads(lambda: SigLipLoss()(img, txt, t, b), img, txt)
    for a, s, r in zip(fair, sig, ref):
        assert torch.allclose(a, s, atol=1e-12)
        assert torch.allclose(a, r, atol=1e-10)


def _bias_ref(img, txt, groups, owner):
    B, T = img.shape[0], txt.shape[0]
    terms = []
    for g in groups.values():
        ids = sorted({int(v) for v in g if v >= 0})
        if len(ids) < 2:
            continue
        for ai in range(len(ids)):
            for bi in range(ai + 1, len(ids)):
                gaps = []
                for c in range(T):
                    ma = [img[i] @ txt[c] for i in range(B) if g[i] == ids[ai] and owner[c] != i]
                    mb = [img[i] @ txt[c] for i in range(B) if g[i] == ids[bi] and owner[c] != i]
                    if ma and mb:
                        gaps.append((sum(ma) / len(ma) - sum(mb) / len(mb)) ** 2)
                if gaps:
                    terms.append(sum(gaps) / len(gaps))
    return sum(terms) / len(terms)


def test_association_bias_matches_loop_reference():
    B, T = 6, 9
    img, txt = _feats(B, T, seed=6)
    owner = torch.arange(T) % B
    groups = {"gender": torch.tensor([0, 1, 0, 1, -1, 2]), "age": torch.tensor([0, 0, 1, 1, 0, -1]),
              "single": torch.tensor([0, 0, 0, -1, -1, -1])}
    fast = _grads(lambda: losses.association_bias(img, txt, groups, owner), img, txt)
    slow = _grads(lambda: _bias_ref(img, txt, groups, owner), img, txt)
    for a, s in zip(fast, slow):
        assert torch.allclose(a, s, atol=1e-10)


def test_fair_siglip_full_matches_reference():
    B, T = 5, 12
    labels, weights, row_w = _layout(B, T, seed=7)
    img, txt = _feats(B, T, seed=8)
    t, b = torch.tensor(10.0), torch.tensor(-10.0)
    owner = torch.arange(T) % B
    groups = {"gender": torch.tensor([0, 1, 1, 0, 1])}
    lam = 0.7
    fast = _grads(lambda: losses.compute_loss("fair-siglip", img, txt, t, b, labels, weights, torch.arange(B),
                                              row_w, groups, owner, lam)[0], img, txt)
    slow = _grads(lambda: _sigmoid_ref(img, txt, t, b, labels, weights, row_w)
                  + lam * _bias_ref(img, txt, groups, owner), img, txt)
    for a, s in zip(fast, slow):
        assert torch.allclose(a, s, atol=1e-10)


def test_bias_zero_without_two_groups_and_siglip_needs_bias():
    img, txt = _feats(3, 3)
    assert float(losses.association_bias(img.detach(), txt.detach(), {"g": torch.tensor([0, 0, -1])}, torch.arange(3))) == 0.0
    with pytest.raises(ValueError, match="logit_bias"):
        losses.compute_loss("siglip", img, txt, torch.tensor(1.0), None, torch.eye(3) * 2 - 1, None,
                            torch.arange(3), None)


def test_fair_clip_is_weighted_infonce_plus_the_bias_term():
    """fair-clip = clip with row weights + λ·R_fair; with unit row weights and λ = 0 it is plain clip."""
    B, T = 5, 12
    labels, weights, row_w = _layout(B, T, seed=9)
    img, txt = _feats(B, T, seed=10)
    t = torch.tensor(20.0)
    owner = torch.arange(T) % B
    groups = {"gender": torch.tensor([0, 1, 1, 0, 1])}
    lam = 0.7

    def run(kind, rw, la):
        return lambda: losses.compute_loss(kind, img, txt, t, None, labels, weights, torch.arange(B), rw, groups,
                                           owner, la)[0]

    fast = _grads(run("fair-clip", row_w, lam), img, txt)
    slow = _grads(lambda: _clip_ref(img, txt, t, labels, weights, torch.arange(B), row_w)
                  + lam * _bias_ref(img, txt, groups, owner), img, txt)
    for a, s in zip(fast, slow):
        assert torch.allclose(a, s, atol=1e-10)
    plain = _grads(run("clip", None, 0.0), img, txt)
    for a, s in zip(_grads(run("fair-clip", torch.ones(B), 0.0), img, txt), plain):
        assert torch.allclose(a, s, atol=1e-12)
    # the row weights and the bias term both change it
    assert not torch.allclose(fast[0], _grads(run("fair-clip", row_w, 0.0), img, txt)[0])
    assert not torch.allclose(fast[0], plain[0])


def _kg_softmax_ref(img, txt, t, labels, weights, owner, row_w):
    """Per image: −log Σ_own pos e^s + log Σ_own kept w·e^s, averaged over images with an own negative."""
    B, T = labels.shape
    total, n = 0.0, 0
    for i in range(B):
        own = [j for j in range(T) if int(owner[j]) == i and weights[i, j] > 0]
        if not any(labels[i, j] < 0 for j in own):
            continue
        sim = {j: t * sum(img[i, d] * txt[j, d] for d in range(img.shape[1])) for j in own}
        num = sum(torch.exp(sim[j]) for j in own if labels[i, j] > 0)
        den = sum(weights[i, j] * torch.exp(sim[j]) for j in own)
        total = total + row_w[i] * -torch.log(num / den)
        n += 1
    return total / n


def test_kg_softmax_matches_loop_reference_and_adds_to_any_loss():
    """CE-CLIP's hard-negative term: only the image's own texts compete; other images' texts do not."""
    B = 4
    owner = torch.tensor([0, 1, 2, 3, 0, 1, 2, 0, 0, 1, 3])  # primaries, 3 positives, 4 KG negatives
    T = len(owner)
    labels = torch.where(owner[None, :] == torch.arange(B)[:, None], 1.0, -1.0)
    labels[:, 7:] = -1.0  # the KG columns are negatives for everybody, their owner included
    g = torch.Generator().manual_seed(3)
    weights = torch.rand(B, T, generator=g) + 0.5
    weights[labels > 0] = 1.0
    weights[0, 8] = 0.0  # masked: image 0 keeps one own negative
    weights[3, 10] = 0.0  # masked: image 3 has none left and drops out
    row_w = torch.rand(B, generator=g) + 0.5
    img, txt = _feats(B, T, seed=4)
    t = torch.tensor(7.0)
    logits = losses.logits_of(img, txt, t)
    fast = _grads(lambda: losses.kg_softmax_loss(losses.logits_of(img, txt, t), labels, weights, owner, row_w),
                  img, txt)
    slow = _grads(lambda: _kg_softmax_ref(img, txt, t, labels, weights, owner, row_w), img, txt)
    for a, s in zip(fast, slow):
        assert torch.allclose(a, s, atol=1e-10)
    # as a term of the total: contrastive + μ·kg_softmax, for a softmax and a sigmoid loss alike
    for kind, bias in (("clip", None), ("siglip", torch.tensor(-3.0))):
        base, _ = losses.compute_loss(kind, img, txt, t, bias, labels, weights, torch.arange(B), None, None, owner)
        total, parts = losses.compute_loss(kind, img, txt, t, bias, labels, weights, torch.arange(B), None, None, owner,
                                           kg_softmax=0.5)
        ref = losses.kg_softmax_loss(losses.logits_of(img, txt, t, bias), labels, weights, owner)
        assert torch.allclose(total, base + 0.5 * ref) and torch.allclose(parts["kg_softmax"], ref)
    # no own negative anywhere: zero, with a gradient path
    none = losses.kg_softmax_loss(logits, torch.where(labels > 0, 1.0, 1.0), weights, owner)
    assert float(none.detach()) == 0.0 and none.requires_grad


def test_relative_bias_sigmoid_keeps_t_fixed_and_learns_the_bias_in_cosine_units():
    """siglip-rel: logits = t·(cos − β) with t fixed; b = −t·β is what open_clip stores."""
    from train import config as train_config
    from train import model

    cfg = train_config.TrainConfig(loss="siglip-rel", siglip_init_scale=20.0, rel_bias_init=0.4, logit_lr=0.01).validate()
    built = model.create(cfg)
    assert not built.base.logit_scale.requires_grad and built.base.logit_bias.requires_grad
    assert float(built.base.logit_scale.exp()) == pytest.approx(20.0)
    assert float(built.base.logit_bias.detach()) == pytest.approx(-20.0 * 0.4)
    groups = model.param_groups(built.model, cfg)
    assert [g["lr"] for g in groups if any(p is built.base.logit_bias for p in g["params"])] == [0.01 * 20.0]
    B, T = 4, 6
    labels, weights, row_w = _layout(B, T, seed=5)
    img, txt = _feats(B, T, seed=6)
    t, beta = torch.tensor(20.0), torch.tensor(0.4, requires_grad=True)
    fast, _ = losses.compute_loss("fair-siglip-rel", img, txt, t, -t * beta, labels, weights, torch.arange(B), row_w)
    cos = img @ txt.T
    ref = sum(row_w[i] * sum(weights[i, j] * F.softplus(-labels[i, j] * t * (cos[i, j] - beta)) for j in range(T))
              for i in range(B)) / B
    assert torch.allclose(fast, ref)


def test_multi_positive_each_makes_every_positive_beat_the_negatives():
    """`each`: mean over positives of softplus(lse_neg − l_p); one positive: the same as `sum` (CE)."""
    B, T = 4, 10
    labels, weights, _ = _layout(B, T, seed=11)
    img, txt = _feats(B, T, seed=12)
    t = torch.tensor(5.0)
    logits = losses.logits_of(img, txt, t)
    fast = losses._multi_positive_ce(logits, labels > 0, weights, "each")
    for i in range(B):
        negs = [j for j in range(T) if labels[i, j] < 0 and weights[i, j] > 0]
        poss = [j for j in range(T) if labels[i, j] > 0 and weights[i, j] > 0]
        ref = sum(-torch.log(torch.exp(logits[i, p]) / (torch.exp(logits[i, p]) + sum(
            weights[i, j] * torch.exp(logits[i, j]) for j in negs))) for p in poss) / len(poss)
        assert torch.allclose(fast[i], ref)
    one = torch.zeros(B, T, dtype=torch.bool)
    one[torch.arange(B), torch.arange(B)] = True
    assert torch.allclose(losses._multi_positive_ce(logits, one, weights, "each"),
                          losses._multi_positive_ce(logits, one, weights, "sum"))


def test_stratified_association_bias_compares_groups_within_a_stratum_only():
    """A group that really shows the concept more often is not penalised once images are compared
    within strata of equal content; one stratum for everybody is the plain penalty."""
    B, T = 6, 9
    img, txt = _feats(B, T, seed=13)
    owner = torch.arange(T) % B
    groups = {"gender": torch.tensor([0, 1, 0, 1, 0, 1])}
    one = torch.zeros(B, T, dtype=torch.long)
    assert torch.allclose(losses.association_bias(img, txt, groups, owner, one),
                          losses.association_bias(img, txt, groups, owner))
    strata = torch.randint(0, 2, (B, T), generator=torch.Generator().manual_seed(1))
    fast = losses.association_bias(img, txt, groups, owner, strata)
    gaps = []
    for c in range(T):
        for s in (0, 1):
            a = [img[i] @ txt[c] for i in range(B) if groups["gender"][i] == 0 and owner[c] != i and strata[i, c] == s]
            b = [img[i] @ txt[c] for i in range(B) if groups["gender"][i] == 1 and owner[c] != i and strata[i, c] == s]
            if a and b:
                gaps.append((sum(a) / len(a) - sum(b) / len(b)) ** 2)
    assert torch.allclose(fast, sum(gaps) / len(gaps))
    # group 0 images all match concept 0's content, group 1 images none: a content gap, not a bias
    cos_gap = F.normalize(torch.tensor([[1.0, 0], [0, 1.0]] * 3), dim=-1)
    concept = F.normalize(torch.tensor([[1.0, 0.2]]), dim=-1)
    strata_c = torch.tensor([[0], [1], [0], [1], [0], [1]])
    assert float(losses.association_bias(cos_gap, concept, groups, torch.tensor([9]))) > 0.1
    assert float(losses.association_bias(cos_gap, concept, groups, torch.tensor([9]), strata_c)) == 0.0
