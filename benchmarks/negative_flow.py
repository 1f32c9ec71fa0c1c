"""Which KG negatives reach the loss, and could a text-only model tell them apart? (docs/RESULTS.md)

For a shard folder and a `train run` configuration (flags as `--set key=value`), without training:
1. the table: KG negatives per type in the shards;
2. the feed: per step, the texts the trainer's collator builds — positives, sources, KG negatives
   per type — over `--batches` batches of the real stream;
3. the guard: with `--checkpoint` (a run folder), each batch's text features from that model go
   through `ahnm.targets`, and the share of each kind of negative pair the guard masks or turns
   positive is counted — by whether the pair really shows the same scene (scene graphs) — with
   examples of guarded captions of other scenes; `--no-facts` runs the guard on the embedding alone;
4. text-only separability: a bag-of-words + bigram logistic regression trained on the fed
   positive texts vs the fed KG negatives of half the batches; then, for every KG negative of the
   other half's images, whether it scores as more negative-looking than the caption it was edited
   from, and than the image's primary caption (SugarCrepe's text-only check, per type). 0.5 = blind; near 1 means the negatives can be
   spotted without the image, so a model learns the wording instead of the binding.

    .venv/bin/python benchmarks/negative_flow.py demo/shards --batches 20 --set negatives=static
    .venv/bin/python benchmarks/negative_flow.py demo/shards --checkpoint runs/x --set source_positives=true
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clusterbuild import contract as C  # noqa: E402
from train import ahnm, data  # noqa: E402
from train import config as TC  # noqa: E402


def table_counts(urls: list[str]) -> dict[str, int]:
    counts: collections.Counter = collections.Counter()
    for s in C.iter_samples(urls):
        counts.update(n["type"] for n in s.meta.get("hard_negatives", []))
    return dict(sorted(counts.items()))


def features(texts: list[str]) -> list[set[str]]:
    out = []
    for t in texts:
        w = data.normalize_text(t).split()
        f = {f"w:{x}" for x in w} | {f"b:{a}_{b}" for a, b in zip(w, w[1:])}
        f |= {"end:period" if t.rstrip().endswith(".") else "end:none", f"first:{w[0] if w else ''}"}
        out.append(f)
    return out


def text_scorer(train: list[tuple[str, int]], seed: int = 0):
    """A logistic regression on word/bigram/punctuation features, trained to call KG negatives 1 and
    positive texts 0; returns score(texts) -> tensor (higher = looks more like a negative)."""
    vocab: dict[str, int] = {}
    ftr = features([t for t, _ in train])
    for f in ftr:
        for x in f:
            vocab.setdefault(x, len(vocab))

    def mat(fs: list[set[str]]) -> torch.Tensor:
        m = torch.zeros(len(fs), len(vocab))
        for i, f in enumerate(fs):
            for x in f:
                if x in vocab:
                    m[i, vocab[x]] = 1.0
        return m

    x, y = mat(ftr), torch.tensor([float(lab) for _, lab in train])
    torch.manual_seed(seed)
    w = torch.zeros(len(vocab), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    pos_weight = (y == 0).sum() / (y == 1).sum().clamp_min(1)  # balance the classes
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y, pos_weight=pos_weight)
        (loss + 1e-4 * w.pow(2).sum()).backward()
        opt.step()
    return lambda texts: (mat(features(texts)) @ w + b).detach()


def pair_test(score, pairs: list[tuple[str, str, str]]) -> dict[str, float]:
    """Per type: the share of (source caption, negative) pairs where the text-only scorer rates the
    negative as more negative-looking than its own source (SugarCrepe's text-only check; 0.5 = blind)."""
    if not pairs:
        return {}
    s_src, s_neg = score([p[0] for p in pairs]), score([p[1] for p in pairs])
    hits: dict[str, list[float]] = collections.defaultdict(list)
    for (_, _, typ), a, b in zip(pairs, s_src.tolist(), s_neg.tolist()):
        hits[typ].append(1.0 if b > a else 0.5 if b == a else 0.0)
    out = {k: round(sum(v) / len(v), 3) for k, v in sorted(hits.items())}
    out["all"] = round(sum(sum(v) for v in hits.values()) / sum(len(v) for v in hits.values()), 3)
    return out


def load_encoder(run: Path):
    import open_clip

    export = run / "export"
    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{export}")
    tok = open_clip.get_tokenizer(f"local-dir:{export}")
    model.eval()
    return model, tok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shards")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--checkpoint", type=Path, default=None, help="run folder whose export/ encodes the texts")
    p.add_argument("--progress", type=float, default=0.5, help="training progress the guard assumes")
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--examples", type=int, default=12)
    p.add_argument("--no-facts", action="store_true",
                   help="run the guard on the embedding alone (no scene graphs, known texts or contrast words): "
                        "what it was before it used the data's facts")
    p.add_argument("--out", type=Path, default=None, help="write the JSON report here too")
    a = p.parse_args(argv)
    cfg = TC.from_dict(TC.parse_overrides(a.sets), TC.TrainConfig(batch_size=a.batch_size), "--set").validate()
    urls = data.resolve_shards([a.shards])
    collate = data.Collator(lambda im: torch.zeros(1), lambda texts: torch.zeros(len(texts), 1), cfg.n_positives,
                            cfg.negatives_per_sample, cfg.negatives != "none", cfg.negative_sampling,
                            cfg.source_positives)
    stream = data.ShardStream(urls, collate, cfg.batch_size, cfg.batching, cfg.clusters_per_batch,
                              cfg.buffer_size, cfg.seed, 0)
    enc = load_encoder(a.checkpoint) if a.checkpoint else None
    fed: collections.Counter = collections.Counter()
    guarded: dict[str, list[float]] = collections.defaultdict(list)
    pair_kinds: collections.Counter = collections.Counter()
    examples: list[dict] = []
    texts_by_batch: list[list[tuple[str, int]]] = []
    pairs_by_batch: list[list[tuple[str, str, str, str]]] = []
    n = 0
    for n, items in enumerate(stream.batches()):
        if n >= a.batches:
            break
        texts, m = collate.texts(items, random.Random(f"{cfg.seed}-texts-0-0-0-{n}"))
        role, ntype = m["role"], m["neg_type"]
        fed["primary"] += role.count(ahnm.ROLE_PRIMARY)
        fed["positive"] += role.count(ahnm.ROLE_POSITIVE)
        for r, k in zip(role, ntype):
            if r == ahnm.ROLE_KG:
                fed[C.NEGATIVE_TYPES[k] if k >= 0 else "?"] += 1
        texts_by_batch.append([(t, int(r == ahnm.ROLE_KG)) for t, r in zip(texts, role)])
        pairs_by_batch.append([(src or it.txt, t, typ, it.txt) for it in items for t, typ, src in it.negatives])
        if enc is not None:
            model, tok = enc
            meta = {**m, "keys": [it.key for it in items], "near_dups": [sorted(it.near_dups) for it in items],
                    "sensitive": [it.sensitive for it in items], "weight": [it.weight for it in items],
                    "scene": [it.scene for it in items], "known": [sorted(it.known) for it in items]}
            cols, near_dup, _, _, fx = data.layout([meta])
            with torch.no_grad():
                txt = torch.nn.functional.normalize(model.encode_text(tok(texts)).float(), dim=-1)
            cos = torch.zeros(len(items), len(texts))
            fx = None if a.no_facts else fx
            _, _, stats = ahnm.targets("ahnm", cols, len(items), cos, txt, near_dup, a.progress, cfg.ahnm, fx)
            for k, v in stats["guarded"].items():
                guarded[k].append(v)
            base = ahnm.base_labels(cols, len(items))
            # the guarded pairs themselves: negatives masked or turned positive, by what they really are
            lab2, kept, _ = ahnm.guard(base, cols, near_dup, txt, a.progress, cfg.ahnm, fx)
            touched = (base < 0) & (~kept | (lab2 > 0))
            for i, j in touched.nonzero().tolist():
                o = int(cols.owner[j])
                same = items[i].scene is not None and items[i].scene == items[o].scene
                kind = "kg" if role[j] == ahnm.ROLE_KG else "caption"
                action = "positive" if lab2[i, j] > 0 else "masked"
                pair_kinds[f"{kind} of {'the same' if same else 'another'} scene: {action}"] += 1
                if len(examples) < a.examples and not same and kind == "caption":
                    examples.append({"anchor": texts[cols.primary[i]], "text": texts[j], "action": action})
    half = max(1, len(texts_by_batch) // 2)
    score = text_scorer([x for b in texts_by_batch[:half] for x in b])
    pairs = [x for b in pairs_by_batch[half:] for x in b] or [x for b in pairs_by_batch for x in b]
    steps = max(1, min(n, a.batches))
    report = {
        "config": {k: v for k, v in TC.parse_overrides(a.sets).items()},
        "table_negatives": table_counts(urls),
        "fed_per_step": {k: round(v / steps, 2) for k, v in sorted(fed.items())},
        "text_only_spotted_vs_source": pair_test(score, [(a, b, c) for a, b, c, _ in pairs]),
        "text_only_spotted_vs_primary_caption": pair_test(score, [(d, b, c) for _, b, c, d in pairs]),
    }
    if enc is not None:
        report["guarded_share"] = {k: round(sum(v) / len(v), 4) for k, v in sorted(guarded.items())}
        report["guarded_pairs"] = dict(sorted(pair_kinds.items()))
        report["guarded_examples_other_scene_captions"] = examples
    print(json.dumps(report, indent=2))
    if a.out:
        a.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
