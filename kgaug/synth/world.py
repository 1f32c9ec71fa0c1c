"""Scenes of the embedded world: vocabulary, held-out object pairs, layouts (pure, no I/O but the vocab).

A scene is two objects, each a shape with a colour (its *type*) plus a size and a texture, laid out
along one axis so that exactly one spatial relation holds between them. Which unordered pairs of
types may appear in training is decided once per seed: a fraction of the pairs is held out and only
ever appears in the evaluation split, so eval scenes never occur in training.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

VOCAB_FILE = Path(__file__).with_name("world.json")
SPLITS = {"train": 0, "eval": 1, "zeroshot": 2, "bias": 3}


@lru_cache(maxsize=1)
def vocab() -> dict[str, Any]:
    return json.loads(VOCAB_FILE.read_text())


@dataclass(frozen=True)
class WorldConfig:
    """Size of the world. Every preset in world.json is a set of overrides of these fields."""

    n_shapes: int = 4
    n_colours: int = 4
    use_size: bool = True
    use_texture: bool = True
    axes: tuple[str, ...] = ("horizontal", "vertical")
    image_size: int = 48
    holdout: float = 0.2  # share of unordered type pairs kept for evaluation only
    seed: int = 0
    bias: float = 0.0  # planted correlation between the group tag and bias_colour (training only)
    bias_colour: str = "red"

    def __post_init__(self) -> None:
        v = vocab()
        if not 2 <= self.n_shapes <= len(v["shapes"]):
            raise ValueError(f"n_shapes must be in [2, {len(v['shapes'])}], got {self.n_shapes}")
        if not 2 <= self.n_colours <= len(v["colours"]):
            raise ValueError(f"n_colours must be in [2, {len(v['colours'])}], got {self.n_colours}")
        bad = [a for a in self.axes if a not in v["relations"]]
        if bad or not self.axes:
            raise ValueError(f"axes must be a non-empty subset of {sorted(v['relations'])}, got {list(self.axes)}")
        if self.image_size < 24:
            raise ValueError(f"image_size must be >= 24 px, got {self.image_size}")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")
        if not 0.0 <= self.bias <= 1.0:
            raise ValueError(f"bias must be in [0, 1], got {self.bias}")
        if self.bias_colour not in self.colours:
            raise ValueError(f"bias_colour {self.bias_colour!r} is not one of this world's colours {self.colours}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> WorldConfig:
        presets = vocab()["presets"]
        if name not in presets:
            raise ValueError(f"unknown world preset {name!r}; known: {', '.join(presets)}")
        kw = dict(presets[name])
        kw["axes"] = tuple(kw.get("axes", cls.axes))
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kw)

    @property
    def shapes(self) -> list[str]:
        return [s["name"] for s in vocab()["shapes"][: self.n_shapes]]

    @property
    def colours(self) -> list[str]:
        return [c["name"] for c in vocab()["colours"][: self.n_colours]]

    @property
    def sizes(self) -> list[str]:
        sizes = [s["name"] for s in vocab()["sizes"]]
        return sizes if self.use_size else [sizes[-1]]

    @property
    def textures(self) -> list[str]:
        tex = [t["name"] for t in vocab()["textures"]]
        return tex if self.use_texture else [tex[0]]

    @property
    def categories(self) -> list[str]:
        """Attribute categories that captions mention (colour always)."""
        return ["size"] * self.use_size + ["colour"] + ["texture"] * self.use_texture


@dataclass
class Obj:
    shape: str
    colour: str
    size: str
    texture: str
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # x, y, w, h in pixels

    def attr(self, category: str) -> str:
        return getattr(self, category)


@dataclass
class Scene:
    objects: list[Obj]
    # (subject index, predicate, object index); exactly one per two-object scene
    relations: list[tuple[int, str, int]] = field(default_factory=list)
    group: str = "a"


Type = tuple[str, str]  # (shape, colour)


def object_types(cfg: WorldConfig) -> list[Type]:
    return [(s, c) for s in cfg.shapes for c in cfg.colours]


def pair_split(cfg: WorldConfig) -> tuple[list[tuple[Type, Type]], list[tuple[Type, Type]]]:
    """(train pairs, held-out pairs) of distinct object types, unordered, fixed by the seed."""
    pairs = list(itertools.combinations(object_types(cfg), 2))
    rng = np.random.default_rng([cfg.seed, 7919])
    order = rng.permutation(len(pairs))
    n_held = int(round(cfg.holdout * len(pairs)))
    if cfg.holdout > 0:
        n_held = max(1, n_held)
    held = sorted(pairs[i] for i in order[:n_held])
    train = sorted(pairs[i] for i in order[n_held:])
    return train, held


def scene_rng(cfg: WorldConfig, split: str, index: int) -> np.random.Generator:
    """One generator per (seed, split, image): scenes are independent, so any subset renders alike."""
    return np.random.default_rng([cfg.seed, SPLITS[split], index])


def _pick(rng: np.random.Generator, seq: list[Any]) -> Any:
    return seq[int(rng.integers(len(seq)))]


def layout(cfg: WorldConfig, objs: list[Obj], axis: str, rng: np.random.Generator) -> None:
    """Place two objects (in order: objs[0] first along the axis) with a clear gap and little
    offset across the axis, so the relation is unambiguous for a human looking at the pixels."""
    S = cfg.image_size
    scale = {s["name"]: s["scale"] for s in vocab()["sizes"]}
    side = [max(5, int(round(scale[o.size] * S))) for o in objs]
    margin, gap = max(1, S // 24), max(2, S // 16)
    along_free = S - 2 * margin - side[0] - side[1] - gap
    a0 = margin + int(rng.integers(0, along_free + 1))
    a1 = a0 + side[0] + gap + int(rng.integers(0, S - margin - side[1] - (a0 + side[0] + gap) + 1))
    # across the axis: centres within a small band so that "left of" is not also "above"
    band = max(1, S // 8)
    c_mid = int(rng.integers(margin + max(side) // 2 + band // 2, S - margin - max(side) // 2 - band // 2 + 1))
    across = []
    for s in side:
        c = c_mid + int(rng.integers(-(band // 2), band // 2 + 1))
        across.append(int(np.clip(c - s // 2, margin, S - margin - s)))
    along = [a0, a1]
    for o, s, a, c in zip(objs, side, along, across, strict=True):
        o.box = (a, c, s, s) if axis == "horizontal" else (c, a, s, s)


def make_scene(cfg: WorldConfig, pair: tuple[Type, Type], rng: np.random.Generator, group: str = "a") -> Scene:
    types = list(pair)
    if rng.random() < 0.5:
        types.reverse()
    objs = [Obj(shape=t[0], colour=t[1], size=_pick(rng, cfg.sizes), texture=_pick(rng, cfg.textures))
            for t in types]
    axis = _pick(rng, list(cfg.axes))
    layout(cfg, objs, axis, rng)
    rel = vocab()["relations"][axis]
    # the subject is whichever object the caption will name first
    subj = int(rng.integers(2))
    pred = rel["before"]["name"] if subj == 0 else rel["after"]["name"]
    return Scene(objects=objs, relations=[(subj, pred, 1 - subj)], group=group)


def _biased_pair(cfg: WorldConfig, pairs: list[tuple[Type, Type]], group: str,
                 rng: np.random.Generator) -> tuple[Type, Type]:
    """With probability `bias`, group a scenes must contain bias_colour and group b scenes must not."""
    if cfg.bias > 0 and rng.random() < cfg.bias:
        has = [p for p in pairs if cfg.bias_colour in (p[0][1], p[1][1])]
        has_not = [p for p in pairs if cfg.bias_colour not in (p[0][1], p[1][1])]
        pool = has if group == "a" else has_not
        if pool:
            return _pick(rng, pool)
    return _pick(rng, pairs)


def train_scene(cfg: WorldConfig, index: int, pairs: list[tuple[Type, Type]]) -> Scene:
    rng = scene_rng(cfg, "train", index)
    group = _pick(rng, vocab()["groups"]["values"])
    return make_scene(cfg, _biased_pair(cfg, pairs, group, rng), rng, group)


def eval_scene(cfg: WorldConfig, index: int, held: list[tuple[Type, Type]]) -> Scene:
    rng = scene_rng(cfg, "eval", index)
    group = _pick(rng, vocab()["groups"]["values"])  # independent of content: no bias in eval
    return make_scene(cfg, _pick(rng, held), rng, group)


def single_object_scene(cfg: WorldConfig, index: int, shape: str, colour: str) -> Scene:
    """One object anywhere in the image (zero-shot classification)."""
    rng = scene_rng(cfg, "zeroshot", index)
    S = cfg.image_size
    o = Obj(shape=shape, colour=colour, size=_pick(rng, cfg.sizes), texture=_pick(rng, cfg.textures))
    scale = {s["name"]: s["scale"] for s in vocab()["sizes"]}
    s = max(5, int(round(scale[o.size] * S)))
    m = max(1, S // 24)
    o.box = (int(rng.integers(m, S - m - s + 1)), int(rng.integers(m, S - m - s + 1)), s, s)
    return Scene(objects=[o], relations=[], group=_pick(rng, vocab()["groups"]["values"]))


def relation_holds(predicate: str, subj_box: tuple[int, int, int, int], obj_box: tuple[int, int, int, int]) -> bool:
    """Geometric truth of a relation between two boxes (x, y, w, h): strict separation along the axis."""
    sx, sy, sw, sh = subj_box
    ox, oy, ow, oh = obj_box
    return {
        "left of": sx + sw <= ox,
        "right of": ox + ow <= sx,
        "above": sy + sh <= oy,
        "below": oy + oh <= sy,
    }[predicate]
