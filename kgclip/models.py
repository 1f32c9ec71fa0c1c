"""Creating open_clip models the same way in every stage: built-in name, our registry, or a JSON file.

Our tiny configs (`model_configs/*.json`, a data-only registry like open_clip's own) are registered
with `open_clip.add_model_config` on first use. `pretrained` is an open_clip tag, a local
checkpoint path, or None for random init — which is allowed but warned about loudly, because
embeddings from a random model make clusters and kNN negatives meaningless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).with_name("model_configs")
log = logging.getLogger(__name__)
_registered: set[str] = set()

RANDOM_INIT_WARNING = (
    "RANDOM INIT: no --pretrained weights; the model starts untrained "
    "(fine for tests and the embedded demo; its embeddings mean nothing on real data)"
)



class _OpenClipChatter(logging.Filter):
    """Drops open_clip's INFO lines (about ten per model: identifiers parsed, configs found, preprocessing
    set) and its random-init warning, which each tool replaces by its own, said once; open_clip's other
    warnings and errors pass. open_clip logs through the root logger, so the filter sits there."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "open_clip" not in record.pathname.replace("\\", "/"):
            return True
        return record.levelno >= logging.WARNING and "No pretrained weights loaded" not in record.getMessage()


_CHATTER = _OpenClipChatter()


def register_configs(*paths: Path) -> None:
    import open_clip

    for p in (CONFIG_DIR, *paths):
        key = str(Path(p).resolve())
        if key not in _registered:
            open_clip.add_model_config(p)
            _registered.add(key)


def resolve_model_name(model: str) -> str:
    """An open_clip model name for `model`: a built-in/registry name, or a JSON config file path."""
    register_configs()
    path = Path(model)
    if model.endswith(".json"):
        if not path.is_file():
            raise FileNotFoundError(f"model config {model} does not exist")
        register_configs(path)
        return path.stem
    return model


@dataclass
class LoadedModel:
    model: Any
    preprocess_train: Any
    preprocess: Any
    tokenizer: Any
    name: str
    pretrained: str | None
    random_init: bool
    model_cfg: dict


def create(model: str, pretrained: str | None = None, device: str = "cpu", precision: str = "fp32",
           **kw: Any) -> LoadedModel:
    import open_clip

    root = logging.getLogger()
    if _CHATTER not in root.filters:
        root.addFilter(_CHATTER)
    name = resolve_model_name(model)
    if not name.startswith(("local-dir:", "hf-hub:")) and open_clip.get_model_config(name) is None:
        raise ValueError(f"unknown model {model!r}: not an open_clip name, a kgclip config "
                         f"({', '.join(sorted(p.stem for p in CONFIG_DIR.glob('*.json')))}) or a JSON file")
    tag = pretrained if pretrained not in ("", "none", "None") else None
    m, pre_train, pre_val = open_clip.create_model_and_transforms(
        name, pretrained=tag, device=device, precision=precision, **kw)
    random_init = tag is None and not name.startswith(("local-dir:", "hf-hub:"))
    # (a random-init model is not warned about here: each tool says so once, in its own output)
    cfg = open_clip.get_model_config(name) or {}
    return LoadedModel(m, pre_train, pre_val, open_clip.get_tokenizer(name), name, tag, random_init, cfg)
