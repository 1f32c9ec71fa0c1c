"""All options of `train run`, with documented defaults, and their loading from a TOML/YAML file.

One dataclass is the single source: the CLI's flags, a config file and `train.loop.run` all set the
same fields, so a resolved config saved next to a run (`config.json` + `config.yaml`) reproduces it.
Defaults are the method as measured best (docs/RESULTS.md): `fair-clip` (InfoNCE + the content-stratified
fair term) + `ahnm` (KG negatives, mining weights, fact-aware false-negative guard) + `cluster` batches
(clusterbuild's scene-graph clusters).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

LOSSES = ("clip", "siglip", "fair-siglip", "fair-clip", "siglip-rel", "fair-siglip-rel")
NEGATIVE_SAMPLING = ("uniform", "balanced")
MULTI_POSITIVE = ("sum", "each")
SOURCE_POSITIVES = ("off", "batch", "kg")
NEGATIVES = ("none", "static", "ahnm")
BATCHING = ("random", "cluster")
PRECISIONS = ("fp32", "bf16", "fp16")
CURRICULA = ("beta", "band")
GUARD_ACTIONS = ("positive", "mask")
GUARD_DUPS = ("positive", "mask", "ignore")


@dataclass
class AHNMConfig:
    """Adaptive hard-negative mining (METHOD.md, train): curriculum, adaptive weights, guard.

    Similarities and margins are cosines (independent of the learnable logit scale), so the
    thresholds keep their meaning while the temperature moves.
    """

    curriculum: str = "beta"  # beta: HCL weights exp(beta*cos); band: a moving quantile band
    beta_max: float = 5.0  # final hardness concentration; ramps linearly from 0
    ramp: float = 1.0  # fraction of training over which beta (or the band) reaches its end value
    band_width: float = 0.3  # band curriculum: width of the quantile band of negative margins
    band_floor: float = 0.1  # band curriculum: weight of negatives outside the band
    easy_margin: float = 0.2  # negatives this far (cosine) below the positive fade out ...
    fade_tau: float = 0.05  # ... over a sigmoid this wide
    min_weight: float = 0.05  # no negative fades completely (keeps uniformity on easy batches)
    cap_margin: float = 0.3  # in-batch negatives this far ABOVE the positive look like label noise
    cap_weight: float = 1.0  # ... and get at most this weight (1 = the uniform weight)
    max_weight: float = 5.0  # global clamp on any negative's weight
    kg_weight: float = 1.0  # extra multiplier on KG hard-negative columns
    guard_action: str = "positive"  # what the false-negative guard does: positive (FFF) or mask
    guard_dups: str = "mask"  # texts of flagged near-duplicate images: mask, positive (with
    # guard_action positive) or ignore. The flags are an embedding's guess (clusterbuild's kNN cosine;
    # in the demo world 79 % of them were different scenes), so by default they only mask
    guard_text_cos: float = 0.97  # text-text cosine at/above which two captions count as the same
    guard_text_rel: float = 0.8  # ... and (cos − median) / (1 − median) at/above this: an untrained
    # text tower maps every caption near one point, so an absolute threshold alone flags everything
    guard_after: float = 0.1  # progress before the cosine guard starts; exact normalised-text
    # matches and near-duplicate flags are guarded from step 0
    guard_scenes: bool = True  # captions of another image with the same scene graph are positives (FFF)
    hist_bins: int = 20  # margin histogram logged per step, over [-1, 1]


@dataclass
class TrainConfig:
    shards: list[str] = field(default_factory=list)  # shard folders, tar files or brace patterns
    out: str = ""
    model: str = "ViT-B-32"  # open_clip name, kgclip registry name or JSON config path (as clusterbuild)
    pretrained: str | None = None  # open_clip tag, checkpoint path, or None (random init, warned)
    steps: int = 0  # total optimizer steps; 0 = derive from epochs
    epochs: int = 1  # used when steps == 0
    batch_size: int = 32
    lr: float = 5e-4
    logit_lr: float = 1e-2  # SigLIP's t and b move too slowly at the tower lr: own group, no wd
    siglip_init_scale: float = 10.0  # sigmoid losses: initial temperature t (SigLIP: 10); fixed t of *-rel
    rel_bias_init: float = 0.5  # siglip-rel: initial bias β in cosine units (logits = t·(cos − β))
    siglip_init_bias: float | str = -10.0  # ... and bias b; "auto" = the log-odds of a positive in
    # a batch, log(P / (T − P)) for P positives among T columns per image (SigLIP's −10 is that
    # prior for its 32k batches)
    weight_decay: float = 0.1
    warmup: int = 10  # linear warmup steps, then cosine decay to 0
    grad_clip: float = 1.0  # 0 disables
    loss: str = "fair-clip"
    negatives: str = "ahnm"
    batching: str = "cluster"
    clusters_per_batch: int = 4
    cluster_mix_start: float = 0.5  # share of cluster batches at the start (rest: random from buffer)
    cluster_mix_end: float = 0.5  # ... and at the end of training, linear in between
    buffer_size: int = 4096  # samples held for batching (cluster buffer / shuffle buffer); open_clip holds 5000.
    # Shards keep each cluster's samples together, so a small buffer makes "random" batches clustered too
    positives: int = 1  # texts per image that count as positive (the primary caption + positives − 1 drawn
    # from its other captions and pseudo-captions)
    negatives_per_sample: int = 2  # KG hard negatives sampled per image per step
    negative_sampling: str = "uniform"  # uniform over the image's negatives, or balanced over their types
    source_positives: str = "off"  # off | batch | kg: each sampled KG negative brings its source caption as a
    # positive of its image, in the whole loss (batch) or only in the kg_softmax term (kg)
    kg_softmax: float = 0.0  # weight μ of CE-CLIP's per-image softmax over own positives + KG negatives
    multi_positive: str = "sum"  # softmax losses with several positives: sum (one numerator) or each
    fair_lambda: float = 10.0  # weight of the association-bias penalty (fair-* losses only; docs/RESULTS.md)
    fair_strata: bool = True  # compare groups only among images whose captions share the concept's fact words
    lora_rank: int = 0  # 0 = full fine-tuning
    lora_alpha: float = 0.0  # 0 = 2 * rank
    freeze_blocks: int = 0  # lower residual blocks of both towers left frozen
    precision: str = "fp32"
    device: str = "cpu"
    seed: int = 0
    workers: int = 0  # DataLoader workers decoding images; 0 = in the training process
    log_every: int = 1
    save_every: int = 50  # steps between latest.pt writes (and always at the end)
    resume: bool = False
    export: bool = True  # write OUT/export (an open_clip local-dir folder) at the end
    plots: bool = True
    ahnm: AHNMConfig = field(default_factory=AHNMConfig)

    def validate(self) -> TrainConfig:
        for name, allowed in (("loss", LOSSES), ("negatives", NEGATIVES), ("batching", BATCHING),
                              ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"--{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.negative_sampling not in NEGATIVE_SAMPLING:
            raise ValueError(f"--negative-sampling must be one of {', '.join(NEGATIVE_SAMPLING)}, "
                             f"got {self.negative_sampling!r}")
        if self.source_positives not in SOURCE_POSITIVES:
            raise ValueError(f"source_positives must be one of {', '.join(SOURCE_POSITIVES)}, "
                             f"got {self.source_positives!r}")
        if self.multi_positive not in MULTI_POSITIVE:
            raise ValueError(f"multi_positive must be one of {', '.join(MULTI_POSITIVE)}, got {self.multi_positive!r}")
        if self.kg_softmax < 0:
            raise ValueError(f"--kg-softmax must be >= 0, got {self.kg_softmax}")
        if self.ahnm.curriculum not in CURRICULA:
            raise ValueError(f"ahnm.curriculum must be one of {CURRICULA}, got {self.ahnm.curriculum!r}")
        if self.ahnm.guard_action not in GUARD_ACTIONS:
            raise ValueError(f"ahnm.guard_action must be one of {GUARD_ACTIONS}, got {self.ahnm.guard_action!r}")
        if isinstance(self.siglip_init_bias, str) and self.siglip_init_bias != "auto":
            raise ValueError(f"siglip_init_bias must be a number or 'auto', got {self.siglip_init_bias!r}")
        if self.ahnm.guard_dups not in GUARD_DUPS:
            raise ValueError(f"ahnm.guard_dups must be one of {GUARD_DUPS}, got {self.ahnm.guard_dups!r}")
        if self.batch_size < 2:
            raise ValueError("--batch-size must be at least 2 (contrastive losses need in-batch negatives)")
        if self.batching == "cluster" and not 1 <= self.clusters_per_batch <= self.batch_size:
            raise ValueError("--clusters-per-batch must be between 1 and the batch size")
        if self.steps < 0 or self.epochs < 1 and self.steps == 0:
            raise ValueError("give --steps N > 0 or --epochs N > 0")
        return self

    @property
    def n_positives(self) -> int:
        return max(1, self.positives)

    def siglip_bias(self, world_size: int = 1) -> float:
        """The sigmoid losses' initial bias b; "auto" from the global batch's column layout."""
        if self.loss.endswith("-rel"):  # b = −t·β
            return -self.siglip_init_scale * self.rel_bias_init
        if not isinstance(self.siglip_init_bias, str):
            return float(self.siglip_init_bias)
        per_image = self.n_positives + (self.negatives_per_sample if self.negatives != "none" else 0)
        cols = self.batch_size * world_size * per_image
        return math.log(self.n_positives / max(cols - self.n_positives, 1))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _known(cls) -> dict[str, Any]:
    return {f.name: f for f in fields(cls)}


def _checked(name: str, value: Any, kind: str, source: str) -> Any:
    """`value` as the field's declared type (its annotation string), or a clear error naming the option."""
    def bad() -> ValueError:
        return ValueError(f"{source}: option {name!r} must be {kind.replace(' | ', ' or ')}, got {value!r}")

    is_num = isinstance(value, (int, float)) and not isinstance(value, bool)
    for alt in (a.strip() for a in kind.split("|")):
        if alt == "None" and value is None:
            return None
        if alt == "bool" and isinstance(value, bool):
            return value
        if alt == "int" and is_num and float(value).is_integer():
            return int(value)
        if alt == "float" and is_num:
            return float(value)
        if alt == "str" and isinstance(value, str):
            return value
        if alt == "list[str]" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
    raise bad()


def from_dict(data: dict[str, Any], base: TrainConfig | None = None, source: str = "config") -> TrainConfig:
    """Apply `data` onto `base` (or the defaults); an unknown key or a value of the wrong type is an
    error naming it."""
    cfg = base or TrainConfig()
    known = _known(TrainConfig)
    for key, value in data.items():
        k = key.replace("-", "_")
        if k not in known:
            raise ValueError(f"{source}: unknown option {key!r} (known: {', '.join(sorted(known))})")
        if k == "ahnm":
            if not isinstance(value, dict):
                raise ValueError(f"{source}: 'ahnm' must be a table of AHNM options")
            ak = _known(AHNMConfig)
            for sub, v in value.items():
                s = sub.replace("-", "_")
                if s not in ak:
                    raise ValueError(f"{source}: unknown option 'ahnm.{sub}' (known: {', '.join(sorted(ak))})")
                setattr(cfg.ahnm, s, _checked(f"ahnm.{sub}", v, str(ak[s].type), source))
        elif k == "shards" and isinstance(value, str):
            cfg.shards = [value]
        else:
            setattr(cfg, k, _checked(key, value, str(known[k].type), source))
    return cfg


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["ahnm.beta_max=2", "loss=clip"]` -> `{"ahnm": {"beta_max": 2}, "loss": "clip"}`; values are read
    as JSON where they parse (numbers, true/false, lists), else kept as strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        *path, leaf = key.strip().split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {item!r}: {part!r} is not a table of options")
        node[leaf] = value
    return out


def load_file(path: str | Path) -> dict[str, Any]:
    """A config file's contents as a dict: TOML (.toml) or YAML (.yaml/.yml) or JSON."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        data = tomllib.loads(text)
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        try:  # safe_load: plain data only; a python/object tag is an error, never a call
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"config file {path} is not plain YAML data: {str(e).splitlines()[0][:200]}") from None
    elif path.suffix == ".json":
        data = json.loads(text)
    else:
        raise ValueError(f"config file {path}: use .toml, .yaml/.yml or .json")
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} does not hold a table of options")
    return data


def save_resolved(cfg: TrainConfig, out: Path) -> None:
    """OUT/config.json and OUT/config.yaml: every option as the run used it."""
    from kgclip.atomic import atomic_write_bytes

    d = cfg.to_dict()
    atomic_write_bytes(out / "config.json", (json.dumps(d, indent=2, sort_keys=True) + "\n").encode())
    try:
        import yaml
    except ImportError:  # minimal GPU images: config.json alone is complete
        return
    atomic_write_bytes(out / "config.yaml", yaml.safe_dump(d, sort_keys=True).encode())
