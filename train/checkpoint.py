"""Checkpoints: atomic `latest.pt`, loadable with `torch.load(weights_only=True)` and by open_clip.

Layout (open_clip_train's keys plus ours): `state_dict` is always the plain open_clip model (LoRA
merged), so `open_clip.create_model_and_transforms(name, pretrained="latest.pt")` loads it;
`train_state_dict` holds the trainable wrapper's state (LoRA factors) when it differs; `optimizer`,
`scheduler`, `scaler`, `rng` and `data` (epoch, batches consumed) make `--resume` exact. Only
tensors, numbers, strings, lists and dicts are stored, which is what `weights_only=True` accepts.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgclip.atomic import atomic_path

LATEST = "latest.pt"


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": _to_lists(random.getstate()),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]]}


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_to_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write via a temp file in the same folder and `os.replace`: a crash never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path: Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / LATEST
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # (what torch raises for anything but tensors and plain data)
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise ValueError(f"checkpoint {path} holds more than tensors and plain data and was refused: checkpoints "
                         f"are loaded with weights_only=True, so nothing in one runs ({first})") from None


def check_compatible(ckpt: dict[str, Any], model_name: str, model_cfg: dict, path: Path | str) -> None:
    """A clear error when the checkpoint was trained with another model config."""
    theirs = ckpt.get("model_cfg")
    if theirs is not None and theirs != model_cfg:
        diff = sorted(k for k in set(theirs) | set(model_cfg) if theirs.get(k) != model_cfg.get(k))
        raise ValueError(f"checkpoint {path} was trained with model {ckpt.get('name')!r}, whose config differs "
                         f"from {model_name!r} in {', '.join(diff)}; pass the same --model to resume")


def load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path | str) -> None:
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path} does not fit this model: {str(e).splitlines()[0]}") from e
