"""The false-negative guard keeps the compositional negatives it exists to weight up (train/facts.py,
train/ahnm.py), and the collator's source positives and negative sampling (train/data.py)."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from train import ahnm, data, facts
from train.config import AHNMConfig

KG = ahnm.ROLE_KG


def _meta(texts, owner, role, scenes, known, neg_type=None):
    return {"owner": owner, "role": role, "neg_type": neg_type or [-1 if r != KG else 2 for r in role],
            "text_norm": [facts.normalize_text(t) for t in texts],
            "words": [" ".join(facts.content_words(t)) for t in texts],
            "contrast": [sorted(facts.contrast_classes(t)) for t in texts],
            "keys": [f"k{i}" for i in range(len(scenes))], "near_dups": [[] for _ in scenes],
            "sensitive": [{} for _ in scenes], "weight": [1.0 for _ in scenes], "scene": scenes,
            "known": [sorted(facts.normalize_text(t) for t in k) for k in known]}


def _graph(a, pred, b, colour_a="red", colour_b="blue"):
    return {"objects": [{"id": "1", "name": a, "attributes": [colour_a]}, {"id": "2", "name": b, "attributes": [colour_b]}],
            "relations": [["1", pred, "2"]]}


def test_scene_signature_folds_converse_relations_and_ignores_ids():
    left = facts.scene_signature(_graph("cube", "left of", "ball"))
    right = {"objects": [{"id": "9", "name": "ball", "attributes": ["blue"], "box": [1, 2, 3, 4]},
                         {"id": "7", "name": "cube", "attributes": ["red"]}], "relations": [["9", "right of", "7"]]}
    assert left == facts.scene_signature(right)  # the same scene, told from the other object
    assert left != facts.scene_signature(_graph("cube", "right of", "ball"))  # the relation differs
    assert left != facts.scene_signature(_graph("cube", "left of", "ball", "blue", "red"))  # colours swapped
    assert facts.scene_signature({}) is None and facts.scene_signature(None) is None


def test_contrast_classes_and_word_bags():
    a = facts.contrast_classes("A red cube to the left of a blue ball.")
    b = facts.contrast_classes("a yellow cube left of a blue ball")
    assert a - b and b - a  # red vs yellow: each names a class the other does not
    assert facts.contrast_classes("a lamp above a table") == facts.contrast_classes("a lamp over a table")  # synonyms
    assert facts.word_bag("a red cube and a blue ball") == facts.word_bag("There is a blue cube and a red ball.")


def _ahnm_inputs(texts, owner, role, scenes, known):
    cols, near_dup, _, _, fx = data.layout([_meta(texts, owner, role, scenes, known)])
    return cols, near_dup, fx


def test_cosine_guard_never_masks_a_pair_that_differs_in_a_fact():
    """Every text at cosine 1 (a word-order-blind tower): only the paraphrase may be masked."""
    texts = ["a red cube left of a blue ball",      # 0: image 0's caption
             "a blue ball left of a green star",    # 1: image 1's caption
             "a red cube right of a blue ball",     # 2: image 2's caption: the relation differs
             "a blue cube left of a red ball",      # 3: image 3's caption: the same words, swapped
             "a red cube is to the left of a blue ball.",  # 4: image 1's second caption: a paraphrase of 0
             "a red cube right of a blue ball."]    # 5: image 0's own KG negative (replace_rel)
    owner, role = [0, 1, 2, 3, 1, 0], [0, 0, 0, 0, 1, KG]
    cols, near_dup, fx = _ahnm_inputs(texts, owner, role, [None] * 4, [[t] for t in texts[:4]])
    tf = F.normalize(torch.ones(len(texts), 4) + 1e-4 * torch.randn(len(texts), 4), dim=-1)
    tf[1] = F.normalize(torch.tensor([0.0, 1, 0, 0]), dim=0)  # image 1's caption is unlike the others
    cfg = AHNMConfig(guard_text_cos=0.9, guard_text_rel=0.0, guard_after=0.0)
    labels = ahnm.base_labels(cols, 4)
    new, kept, stats = ahnm.guard(labels, cols, near_dup, tf, 1.0, cfg, fx)
    assert kept[0, 2] and kept[0, 3]  # other relation / swapped attributes: still negatives
    assert kept[0, 5] and new[0, 5] == -1  # the image's own KG negative is never guessed away
    assert not kept[0, 4]  # the paraphrase (no fact differs) is masked, as before
    # without the data's facts the guard falls back to the embedding alone and masks them all
    _, kept_blind, _ = ahnm.guard(labels, cols, near_dup, tf, 1.0, cfg, None)
    assert not kept_blind[0, 2] and not kept_blind[0, 3]
    assert stats["guarded"]["inbatch"] > 0


def test_guard_turns_same_scene_and_known_captions_positive_but_never_kg_negatives():
    g = _graph("cube", "left of", "ball")
    same = {"objects": [{"id": "a", "name": "ball", "attributes": ["blue"]},
                        {"id": "b", "name": "cube", "attributes": ["red"]}], "relations": [["a", "right of", "b"]]}
    other = _graph("cube", "right of", "ball")
    texts = ["there is a red cube left of a blue ball", "a blue ball to the right of a red cube",
             "a red cube right of a blue ball", "a red cube left of a blue ball.",  # 3: image 2's KG negative
             "a red cube left of a blue ball"]  # 4: image 2's other caption = a pseudo-caption of image 0
    owner, role = [0, 1, 2, 2, 2], [0, 0, 0, KG, 1]
    scenes = [facts.scene_signature(x) for x in (g, same, other)]
    known = [["there is a red cube left of a blue ball", "a red cube left of a blue ball."], [texts[1]], [texts[2]]]
    cols, near_dup, fx = _ahnm_inputs(texts, owner, role, scenes, known)
    labels = ahnm.base_labels(cols, 3)
    new, kept, stats = ahnm.guard(labels, cols, near_dup, None, 0.0, AHNMConfig(), fx)
    assert new[0, 1] == 1 and new[1, 0] == 1  # the same scene graph: FFF positives both ways
    assert new[0, 2] == -1 and kept[0, 2]  # another scene: a negative
    assert new[0, 3] == -1 and not kept[0, 3]  # a KG negative equal to image 0's pseudo-caption: masked only
    assert new[0, 4] == 1  # another image's caption equal to one of image 0's known texts: positive
    assert stats["share_guard_scene"] > 0
    off, _, _ = ahnm.guard(labels, cols, near_dup, None, 0.0, AHNMConfig(guard_scenes=False), fx)
    assert off[0, 1] == -1


def test_balanced_sampling_spreads_over_types_and_uniform_follows_the_table():
    negs = [(f"o{i}", "replace_obj", "") for i in range(20)] + [("r", "replace_rel", ""), ("s", "swap_att", "")]
    rng = random.Random(0)
    bal = [n[1] for _ in range(300) for n in data.sample_negatives(negs, 2, rng, "balanced")]
    uni = [n[1] for _ in range(300) for n in data.sample_negatives(negs, 2, rng, "uniform")]
    assert abs(bal.count("replace_rel") / len(bal) - 1 / 3) < 0.06  # each of 3 types about a third
    assert uni.count("replace_rel") / len(uni) < 0.1  # 1 of 22 negatives
    assert len(data.sample_negatives(negs[:1], 3, rng, "balanced")) == 1
    two_types = [("a", "t1", ""), ("b", "t1", ""), ("c", "t2", "")]
    assert sorted(n[0] for n in data.sample_negatives(two_types, 3, rng, "balanced")) == ["a", "b", "c"]


def test_source_positives_pair_each_negative_with_the_caption_it_was_edited_from():
    it = data.Item("k0", b"", "there is a red cube left of a blue ball", ["a red cube and a blue ball."],
                   [("a blue cube and a red ball.", "swap_att", "a red cube and a blue ball."),
                    ("a red cube right of a blue ball.", "replace_rel", "a red cube left of a blue ball.")],
                   0, [], set(), 1.0, {})
    col = data.Collator(None, None, 1, 2, True, "uniform", source_positives="batch")
    texts, m = col.texts([it], random.Random(0))
    pos = [t for t, r in zip(texts, m["role"]) if r != KG]
    assert pos == ["there is a red cube left of a blue ball", "a red cube and a blue ball.",
                   "a red cube left of a blue ball."] or sorted(pos[1:]) == sorted(
        ["a red cube and a blue ball.", "a red cube left of a blue ball."])
    assert sum(r == KG for r in m["role"]) == 2
    plain, m2 = data.Collator(None, None, 1, 2, True).texts([it], random.Random(0))
    assert [t for t, r in zip(plain, m2["role"]) if r != KG] == ["there is a red cube left of a blue ball"]
