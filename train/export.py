"""Export to an open_clip `local-dir:` folder (loads with `create_model_and_transforms`, CLIP_benchmark).

The folder holds `open_clip_config.json` ({"model_cfg", "preprocess_cfg"}) and
`open_clip_pytorch_model.bin` (a plain state dict). open_clip's `_find_checkpoint_in_dir` only
looks at *.safetensors, *.bin and *.pth, never *.pt, hence the name. LoRA is merged before export.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from train import checkpoint as ckpt_io

CONFIG_NAME = "open_clip_config.json"
WEIGHTS_NAME = "open_clip_pytorch_model.bin"


def _preprocess_cfg(model) -> dict:
    vis = getattr(model, "visual", None)
    cfg = dict(getattr(vis, "preprocess_cfg", {}) or {})
    size = getattr(vis, "image_size", None)
    if size is not None and "size" not in cfg:
        cfg["size"] = list(size) if isinstance(size, (tuple, list)) else size
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}


def export_model(model, model_cfg: dict, preprocess, out: Path) -> Path:
    """Write the folder atomically file by file; returns the folder."""
    from kgclip.atomic import atomic_path, atomic_write_bytes

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / WEIGHTS_NAME) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    model_cfg = dict(model_cfg)
    bias = getattr(model, "logit_bias", None)
    if bias is not None:  # open_clip only creates logit_bias when the config asks for it (SigLIP)
        model_cfg["init_logit_bias"] = float(bias.detach().reshape(-1)[0])
    conf = {"model_cfg": model_cfg, "preprocess_cfg": _preprocess_cfg(model)}
    atomic_write_bytes(out / CONFIG_NAME, (json.dumps(conf, indent=2) + "\n").encode())
    return out


def export_checkpoint(checkpoint: Path | str, out: Path | str) -> Path:
    """A `train run` checkpoint (file or run folder) -> a local-dir folder."""
    import open_clip

    ck = ckpt_io.load(checkpoint)
    cfg = ck.get("model_cfg")
    if not cfg:
        raise ValueError(f"checkpoint {checkpoint} has no model_cfg (not written by `train run`)")
    cfg = dict(cfg)
    if "logit_bias" in ck["state_dict"]:
        cfg["init_logit_bias"] = 0.0
    custom = cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {})
    model = (open_clip.CustomTextCLIP if custom else open_clip.CLIP)(**cfg)
    ckpt_io.load_state(model, ck["state_dict"], checkpoint)
    return export_model(model, ck["model_cfg"], None, Path(out))
