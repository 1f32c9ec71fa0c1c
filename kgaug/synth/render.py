"""Pixels of a scene: flat shapes drawn with PIL into masks, coloured and textured with numpy.

No anti-aliasing, so every pixel of an object is exactly its colour or its texture shade — the tests
read an object's colour back from the image at its box centre.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from kgaug.synth.world import Scene, vocab

TEXTURE_SHADE = 0.55  # texture marks are the object's colour darkened to this fraction


def _star(n: int, inner: float) -> list[tuple[float, float]]:
    pts = []
    for k in range(2 * n):
        r = 1.0 if k % 2 == 0 else inner
        a = -math.pi / 2 + k * math.pi / n
        pts.append((0.5 + 0.5 * r * math.cos(a), 0.5 + 0.5 * r * math.sin(a)))
    return pts


def _regular(n: int, rot: float = 0.0) -> list[tuple[float, float]]:
    return [(0.5 + 0.5 * math.cos(rot + 2 * math.pi * k / n), 0.5 + 0.5 * math.sin(rot + 2 * math.pi * k / n))
            for k in range(n)]


# unit-square polygons; circle is drawn as an ellipse
POLYGONS: dict[str, list[tuple[float, float]]] = {
    "square": [(0.05, 0.05), (0.95, 0.05), (0.95, 0.95), (0.05, 0.95)],
    "triangle": [(0.5, 0.0), (1.0, 1.0), (0.0, 1.0)],
    "star": _star(5, 0.45),
    "cross": [(0.33, 0), (0.67, 0), (0.67, 0.33), (1, 0.33), (1, 0.67), (0.67, 0.67), (0.67, 1), (0.33, 1),
              (0.33, 0.67), (0, 0.67), (0, 0.33), (0.33, 0.33)],
    "diamond": [(0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)],
    "hexagon": _regular(6),
    "heart": [(0.5, 1.0), (0.05, 0.5), (0.0, 0.25), (0.15, 0.05), (0.35, 0.05), (0.5, 0.22), (0.65, 0.05),
              (0.85, 0.05), (1.0, 0.25), (0.95, 0.5)],
}


@lru_cache(maxsize=64)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:h, 0:w]


@lru_cache(maxsize=256)
def texture_local(name: str, w: int, h: int) -> np.ndarray:
    """Boolean (h, w) mask of texture marks inside a box, anchored at the box centre so that even the
    smallest object (6 px at 24 px images) shows its texture: the centre pixel is always a mark."""
    yy, xx = _grid(h, w)
    cx, cy = w // 2, h // 2
    if name == "striped":
        return ((yy - cy) // 2) % 2 == 0
    if name == "dotted":
        return ((yy - cy) % 3 == 0) & ((xx - cx) % 3 == 0)
    return np.zeros((h, w), dtype=bool)


@lru_cache(maxsize=64)
def rgb(colour: str) -> np.ndarray:
    out = np.array({c["name"]: c["rgb"] for c in vocab()["colours"]}[colour], dtype=np.uint8)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=64)
def shaded(colour: str) -> np.ndarray:
    out = (rgb(colour).astype(np.float32) * TEXTURE_SHADE).astype(np.uint8)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=4096)
def local_mask(shape: str, w: int, h: int) -> np.ndarray:
    """(h, w) mask of a shape filling its box; cached because a world has few (shape, size) pairs."""
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)
    if shape == "circle":
        d.ellipse([0, 0, w - 1, h - 1], fill=255)
    else:
        d.polygon([(px * (w - 1), py * (h - 1)) for px, py in POLYGONS[shape]], fill=255)
    out = np.asarray(img) > 0
    out.flags.writeable = False
    return out


def shape_mask(shape: str, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Full-image mask of one object (tests and tools; render works box-locally)."""
    x, y, w, h = box
    m = np.zeros((size, size), dtype=bool)
    m[y:y + h, x:x + w] = local_mask(shape, w, h)
    return m


def render(scene: Scene, size: int) -> np.ndarray:
    """HxWx3 uint8 image of the scene on its group's background."""
    bg = vocab()["groups"]["background"][scene.group]
    out = np.empty((size, size, 3), dtype=np.uint8)
    out[:] = bg
    for o in scene.objects:
        x, y, w, h = o.box
        m = local_mask(o.shape, w, h)
        region = out[y:y + h, x:x + w]
        region[m] = rgb(o.colour)
        region[m & texture_local(o.texture, w, h)] = shaded(o.colour)
    return out
