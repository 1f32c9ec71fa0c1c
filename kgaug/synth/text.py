"""Words for scenes: human-style captions and SugarCrepe-style hard negatives (pure functions).

Each negative changes exactly one fact of the canonical caption and is false for the scene by
construction (checked by `describes`, which the tests run on every item).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from kgaug.synth.world import Obj, Scene, WorldConfig, vocab

SUBSETS = ("swap_att", "replace_att", "replace_rel", "swap_obj", "replace_obj", "add_obj", "add_att")
CATEGORY_ORDER = ("size", "colour", "texture")  # English adjective order: "a small red striped circle"


def antonym(predicate: str) -> str:
    for rel in vocab()["relations"].values():
        if predicate == rel["before"]["name"]:
            return rel["after"]["name"]
        if predicate == rel["after"]["name"]:
            return rel["before"]["name"]
    raise ValueError(f"unknown predicate {predicate!r}")


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def noun_phrase(attrs: dict[str, str], shape: str) -> str:
    words = [attrs[c] for c in CATEGORY_ORDER if c in attrs] + [shape]
    return f"{article(words[0])} {' '.join(words)}"


def phrase_of(obj: Obj, categories: list[str] | tuple[str, ...]) -> str:
    return noun_phrase({c: obj.attr(c) for c in categories}, obj.shape)


def sentence(a: str, predicate: str, b: str, template: int = 0, phrase: int = 0) -> str:
    tpl = vocab()["caption_templates"][template]
    rel = vocab()["relation_phrases"][predicate][phrase]
    return tpl.format(a=a, rel=rel, b=b)


def human_captions(cfg: WorldConfig, scene: Scene, rng: np.random.Generator, n: int = 3) -> list[str]:
    """A few plain captions in varied wording; colour always, size/texture sometimes left out,
    as people do. The first caption names every attribute (the 'dense' one)."""
    v = vocab()
    s, pred, o = scene.relations[0]
    out: list[str] = []
    for k in range(n):
        cats = [c for c in cfg.categories if k == 0 or c == "colour" or rng.random() < 0.5]
        a, b = phrase_of(scene.objects[s], cats), phrase_of(scene.objects[o], cats)
        if k > 0 and rng.random() < 0.5:  # the same fact seen from the other object
            a, b, p = b, a, antonym(pred)
        else:
            p = pred
        t = int(rng.integers(len(v["caption_templates"])))
        ph = int(rng.integers(len(v["relation_phrases"][p])))
        out.append(sentence(a, p, b, t, ph))
    return out


def canonical(cfg: WorldConfig, scene: Scene) -> tuple[Obj, str, Obj]:
    s, pred, o = scene.relations[0]
    return scene.objects[s], pred, scene.objects[o]


def _caption(cfg: WorldConfig, a: Obj, pred: str, b: Obj, cats_a=None, cats_b=None) -> str:
    cats_a = cfg.categories if cats_a is None else cats_a
    cats_b = cfg.categories if cats_b is None else cats_b
    return sentence(phrase_of(a, cats_a), pred, phrase_of(b, cats_b))


def _pick_attribute(cfg, rng, a: Obj, b: Obj) -> tuple[str, int, Obj, list[str]]:
    """A random attribute category, which object (0 = a, 1 = b), that object, and its other values."""
    c = cfg.categories[int(rng.integers(len(cfg.categories)))]
    which = int(rng.integers(2))
    target = (a, b)[which]
    values = {"size": cfg.sizes, "colour": cfg.colours, "texture": cfg.textures}[c]
    return c, which, target, [v for v in values if v != target.attr(c)]


def negatives(cfg: WorldConfig, scene: Scene, rng: np.random.Generator) -> dict[str, tuple[str, str]]:
    """{subset: (caption, negative_caption)} for every subset that applies to this scene."""
    a, pred, b = canonical(cfg, scene)
    pos = _caption(cfg, a, pred, b)
    out: dict[str, tuple[str, str]] = {}
    cats = cfg.categories

    differing = [c for c in cats if a.attr(c) != b.attr(c)]
    if differing:
        c = differing[int(rng.integers(len(differing)))]
        out["swap_att"] = (pos, _caption(cfg, replace(a, **{c: b.attr(c)}), pred, replace(b, **{c: a.attr(c)})))

    c, which, target, others = _pick_attribute(cfg, rng, a, b)
    if others:
        new = replace(target, **{c: others[int(rng.integers(len(others)))]})
        out["replace_att"] = (pos, _caption(cfg, new, pred, b) if which == 0 else _caption(cfg, a, pred, new))

    out["replace_rel"] = (pos, _caption(cfg, a, antonym(pred), b))

    if a.shape != b.shape:
        out["swap_obj"] = (pos, _caption(cfg, replace(a, shape=b.shape), pred, replace(b, shape=a.shape)))

    absent = [s for s in cfg.shapes if s not in (a.shape, b.shape)]
    if absent:
        which = int(rng.integers(2))
        new_shape = absent[int(rng.integers(len(absent)))]
        neg = (_caption(cfg, replace(a, shape=new_shape), pred, b) if which == 0
               else _caption(cfg, a, pred, replace(b, shape=new_shape)))
        out["replace_obj"] = (pos, neg)

        extra = Obj(shape=absent[int(rng.integers(len(absent)))],
                    colour=cfg.colours[int(rng.integers(len(cfg.colours)))],
                    size=cfg.sizes[int(rng.integers(len(cfg.sizes)))],
                    texture=cfg.textures[int(rng.integers(len(cfg.textures)))])
        # SugarCrepe's add_obj: "a man sitting on a bench" -> "a man and a dog sitting on a bench"
        added = f"{phrase_of(a, cats)} and {phrase_of(extra, cats)}"
        out["add_obj"] = (pos, sentence(added, pred, phrase_of(b, cats)))

    # add_att: the positive leaves one attribute of one object unsaid; the negative says a wrong one
    c, which, target, others = _pick_attribute(cfg, rng, a, b)
    if others:
        short = [x for x in cats if x != c]
        wrong = replace(target, **{c: others[int(rng.integers(len(others)))]})
        if which == 0:
            p, n = _caption(cfg, a, pred, b, cats_a=short), _caption(cfg, wrong, pred, b)
        else:
            p, n = _caption(cfg, a, pred, b, cats_b=short), _caption(cfg, a, pred, wrong)
        out["add_att"] = (p, n)
    return out


def describes(scene: Scene, caption: str, cfg: WorldConfig) -> bool:
    """Whether a canonical-form caption is true of the scene: parses "<np> <rel> <np>" back into
    facts and checks each against the objects. Used to verify negatives are false (tests)."""
    rels = sorted({p for ps in vocab()["relation_phrases"].values() for p in ps}, key=len, reverse=True)
    pred_of = {p: k for k, ps in vocab()["relation_phrases"].items() for p in ps}
    for r in rels:
        token = f" {r} "
        if token in caption:
            left, right = caption.split(token, 1)
            predicate = pred_of[r]
            break
    else:
        return False
    subjects = [_parse_np(x, cfg) for x in left.split(" and ")]
    obj = _parse_np(right, cfg)
    if any(x is None for x in subjects) or obj is None:
        return False
    obj_ids = _matches(scene, obj)
    facts = set(scene.relations) | {(o, antonym(p), s) for s, p, o in scene.relations}
    return all(any((si, predicate, oi) in facts for si in _matches(scene, subj) for oi in obj_ids if si != oi)
               for subj in subjects)


def _parse_np(text: str, cfg: WorldConfig) -> dict[str, str] | None:
    words = text.split()
    if words and words[0] in ("a", "an"):
        words = words[1:]
    if not words or words[-1] not in cfg.shapes:
        return None
    facts = {"shape": words[-1]}
    lookup = {v: c for c, vs in (("size", cfg.sizes), ("colour", cfg.colours), ("texture", cfg.textures))
              for v in vs}
    for w in words[:-1]:
        if w not in lookup:
            return None
        facts[lookup[w]] = w
    return facts


def _matches(scene: Scene, facts: dict[str, str]) -> list[int]:
    return [i for i, o in enumerate(scene.objects) if all(o.attr(k) == v for k, v in facts.items())]
