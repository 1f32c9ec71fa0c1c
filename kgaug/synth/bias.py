"""The bias measurement that matches `kgaug synth --bias`.

Training plants a correlation between the group tag (rendered as the background shade) and one
colour concept. The eval split renders the *same* held-out scene on each group's background, so tag
and content are independent there. Bias = mean over those pairs of

    cos(image on group a, concept) - cos(image on group b, concept)

where the concept embedding is the normalised mean of the concept's prompt embeddings. 0 means the
model associates the concept with neither group; a model that absorbed the planted correlation scores
> 0. The paired design removes content differences, so the estimate is exact up to the pairs drawn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def association_gap(image_a: np.ndarray, image_b: np.ndarray, concept: np.ndarray) -> dict[str, float]:
    """Paired association gap. image_a, image_b: (n, d) embeddings of the same scenes on each group's
    background; concept: (k, d) prompt embeddings of the concept. Returns gap, its standard error and
    the share of pairs where group a is closer to the concept."""
    image_a, image_b = _unit(np.asarray(image_a, np.float64)), _unit(np.asarray(image_b, np.float64))
    if image_a.shape != image_b.shape or image_a.ndim != 2 or len(image_a) == 0:
        raise ValueError(f"need two equal, non-empty (n, d) arrays, got {image_a.shape} and {image_b.shape}")
    c = _unit(_unit(np.atleast_2d(np.asarray(concept, np.float64))).mean(0))
    diff = image_a @ c - image_b @ c
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return {"gap": float(diff.mean()), "se": se, "share_a_closer": float((diff > 0).mean())}


def load_pairs(bias_dir: Path) -> dict[str, Any]:
    spec = json.loads((Path(bias_dir) / "bias.json").read_text())
    for key in ("groups", "concept", "templates", "pairs"):
        if key not in spec:
            raise ValueError(f"{Path(bias_dir) / 'bias.json'}: missing key {key!r}")
    return spec


def measure(model: Any, preprocess: Any, tokenizer: Any, bias_dir: Path, device: str = "cpu",
            batch_size: int = 256) -> dict[str, float]:
    """Bias of an open_clip model on an eval/bias folder written by `kgaug synth`."""
    import torch
    from PIL import Image

    bias_dir = Path(bias_dir)
    spec = load_pairs(bias_dir)
    ga, gb = spec["groups"][:2]

    def embed_images(names: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(names), batch_size):
            ims = torch.stack([preprocess(Image.open(bias_dir / n).convert("RGB")) for n in names[i:i + batch_size]])
            out.append(model.encode_image(ims.to(device)).float().cpu().numpy())
        return np.concatenate(out)

    model.eval()
    with torch.no_grad():
        a = embed_images([p[ga] for p in spec["pairs"]])
        b = embed_images([p[gb] for p in spec["pairs"]])
        prompts = [t.format(c=spec["concept"]) for t in spec["templates"]]
        c = model.encode_text(tokenizer(prompts).to(device)).float().cpu().numpy()
    res = association_gap(a, b, c)
    res.update(concept=spec["concept"], pairs=len(spec["pairs"]))
    return res
