"""Speed of `kgaug synth`: scenes + pixels, + PNG bytes, + the whole folder; vs bare PIL in the same run.

The bare-library baseline draws two filled polygons with PIL on an image of the same size and encodes
it as PNG: the least any renderer of this world must do per image.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_synth.py [--n 3000] [--size 48]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageDraw  # noqa: E402

from kgaug.synth import render, text, world, writer  # noqa: E402
from kgaug.synth.world import WorldConfig  # noqa: E402


def per_s(fn, n: int) -> float:
    t = time.perf_counter()
    fn(n)
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--size", type=int, default=48)
    a = p.parse_args(argv)
    cfg = WorldConfig.preset("small", image_size=a.size)
    pairs, _ = world.pair_split(cfg)

    def bare(n: int) -> None:
        for _ in range(n):
            im = Image.new("RGB", (a.size, a.size), (235, 235, 235))
            d = ImageDraw.Draw(im)
            d.polygon([(4, 4), (20, 4), (20, 20), (4, 20)], fill=(220, 30, 30))
            d.polygon([(30, 10), (44, 10), (37, 24)], fill=(30, 60, 220))
            buf = io.BytesIO()
            im.save(buf, format="PNG", compress_level=1)

    def scenes(n: int) -> None:
        for i in range(n):
            world.train_scene(cfg, i, pairs)

    def pixels(n: int) -> None:
        for i in range(n):
            render.render(world.train_scene(cfg, i, pairs), a.size)

    def png(n: int) -> None:
        for i in range(n):
            writer.png_bytes(render.render(world.train_scene(cfg, i, pairs), a.size))

    def captions(n: int) -> None:
        for i in range(n):
            sc = world.train_scene(cfg, i, pairs)
            text.human_captions(cfg, sc, world.scene_rng(cfg, "train", i))

    def folder(n: int) -> None:
        with tempfile.TemporaryDirectory() as d:
            writer.write_world(cfg, Path(d), n, 0)

    res = {"image_size": a.size, "n": a.n}
    for name, fn in (("bare_pil_png", bare), ("scenes", scenes), ("render", pixels), ("render_png", png),
                     ("captions", captions), ("write_world_train", folder)):
        res[name + "_per_s"] = round(per_s(fn, a.n), 1)
    res["ratio_render_png_vs_bare"] = round(res["bare_pil_png_per_s"] / res["render_png_per_s"], 2)
    res["ratio_folder_vs_bare"] = round(res["bare_pil_png_per_s"] / res["write_world_train_per_s"], 2)
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
