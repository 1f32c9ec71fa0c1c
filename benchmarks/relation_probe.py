"""Does a trained model represent left/right at all — in its text tower, its image tower, or neither?

For the held-out `replace_rel` items of an embedded world (caption vs the same caption with the
relation flipped) and their images, prints per run:
- text cos(caption, flipped caption): 1.0 = the text tower cannot tell "left of" from "right of";
- image cos(image, its mirror image): mirroring swaps left and right, so 1.0 = the image tower
  ignores where things are;
- accuracy on the items, and on the mirrored images against the flipped captions.
A run whose relations stayed at chance has both cosines near 1: neither tower moved off the
relation-blind solution, so no gradient reaches either (docs/RESULTS.md).

    .venv/bin/python benchmarks/relation_probe.py --world build/ablation/world build/ablation/runs/clip-s*
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F


def probe(run: Path, world: Path, n: int = 200) -> dict[str, float]:
    import open_clip
    from PIL import Image

    ev = world / "eval"
    items = json.loads((ev / "sugarcrepe" / "replace_rel.json").read_text())
    keys = sorted(items)[:n]
    model, _, pre = open_clip.create_model_and_transforms(f"local-dir:{run / 'export'}")
    tok = open_clip.get_tokenizer(f"local-dir:{run / 'export'}")
    model.eval()

    def images(mirror: bool) -> torch.Tensor:
        out = []
        for k in keys:
            im = Image.open(ev / "images" / items[k]["filename"]).convert("RGB")
            out.append(pre(im.transpose(Image.FLIP_LEFT_RIGHT) if mirror else im))
        return F.normalize(model.encode_image(torch.stack(out)).float(), dim=-1)

    with torch.no_grad():
        pos = F.normalize(model.encode_text(tok([items[k]["caption"] for k in keys])).float(), dim=-1)
        neg = F.normalize(model.encode_text(tok([items[k]["negative_caption"] for k in keys])).float(), dim=-1)
        im, mi = images(False), images(True)
    return {"text_cos_flipped": float((pos * neg).sum(-1).mean()),
            "image_cos_mirror": float((im * mi).sum(-1).mean()),
            "accuracy": float(((im * pos).sum(-1) > (im * neg).sum(-1)).float().mean()),
            "mirror_accuracy": float(((mi * neg).sum(-1) > (mi * pos).sum(-1)).float().mean())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run folders with an export/ (train run OUT)")
    p.add_argument("--world", type=Path, required=True, help="the kgaug synth folder the runs trained on")
    p.add_argument("--items", type=int, default=200)
    a = p.parse_args(argv)
    for run in a.runs:
        r = probe(run, a.world, a.items)
        print(f"{run.name}: " + " ".join(f"{k}={v:.3f}" for k, v in r.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
