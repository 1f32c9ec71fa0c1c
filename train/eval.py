"""Evaluation: SugarCrepe / ARO caption selection, zero-shot classification, shard retrieval.

`evaluate(checkpoint, out, ...) -> dict` is the stable in-process API (the CLI and the ablation use
it). Any checkpoint goes through the `local-dir:` export, so what is measured is exactly what
open_clip (and CLIP_benchmark) would load. Missing or broken images are skipped and counted.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from train.export import CONFIG_NAME, export_checkpoint

DEFAULT_TEMPLATES = ("a photo of a {c}.",)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class Scorer:
    """Normalised image/text embeddings from an open_clip model, batched."""

    def __init__(self, model, preprocess, tokenizer, device: str = "cpu", batch_size: int = 64):
        self.model, self.preprocess, self.tokenizer = model.to(device).eval(), preprocess, tokenizer
        self.device, self.bs = device, batch_size
        self.bar: Any = None  # a `kgclip.progress` bar advanced by every text and image embedded

    @torch.no_grad()
    def texts(self, texts: list[str]) -> torch.Tensor:
        out = []
        for i in range(0, len(texts), self.bs):
            out.append(self.model.encode_text(self.tokenizer(texts[i:i + self.bs]).to(self.device), normalize=True))
            if self.bar is not None:
                self.bar.advance(len(out[-1]))
        return torch.cat(out).float().cpu() if out else torch.zeros(0, 1)

    @torch.no_grad()
    def images(self, pil_images: list) -> torch.Tensor:
        out = []
        for i in range(0, len(pil_images), self.bs):
            x = torch.stack([self.preprocess(im) for im in pil_images[i:i + self.bs]]).to(self.device)
            out.append(self.model.encode_image(x, normalize=True).float().cpu())
            if self.bar is not None:
                self.bar.advance(len(x))
        return torch.cat(out) if out else torch.zeros(0, 1)


def load_scorer(checkpoint: str | Path, device: str = "cpu", batch_size: int = 64, model: str | None = None
                ) -> Scorer:
    import open_clip

    path = Path(checkpoint)
    if model is not None and path.is_file():  # e.g. open_clip_train's epoch_N.pt: no model_cfg inside
        from train import checkpoint as ckpt_io

        if "model_cfg" not in ckpt_io.load(path):
            from kgclip import models

            lm = models.create(model, str(path), device=device)
            return Scorer(lm.model, lm.preprocess, lm.tokenizer, device, batch_size)
    tmp = None
    if path.is_dir() and (path / CONFIG_NAME).exists():
        folder = path
    elif path.is_dir() and (path / "export" / CONFIG_NAME).exists() and not (path / "latest.pt").exists():
        folder = path / "export"
    else:
        folder = tmp = Path(tempfile.mkdtemp(prefix="kgclip-eval-"))
    try:
        if tmp is not None:
            export_checkpoint(path, folder)
        m, _, pre = open_clip.create_model_and_transforms(f"local-dir:{folder}", device=device)
        tok = open_clip.get_tokenizer(f"local-dir:{folder}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return Scorer(m, pre, tok, device, batch_size)


def _open(path: Path):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def pairwise_accuracy(scorer: Scorer, rows: list[dict[str, Any]], images: Path) -> dict[str, Any]:
    """rows of {image: rel path, pos, neg, [crop], [group]} -> accuracy (micro + macro over groups)."""
    kept, pil, skipped = [], [], {}
    for r in rows:
        try:
            im = _open(images / r["image"])
            if r.get("crop"):
                x, y, w, h = r["crop"]
                if w > 0 and h > 0:
                    im = im.crop((x, y, x + w, y + h))
        except (OSError, ValueError) as e:
            why = "missing image" if isinstance(e, FileNotFoundError) else "unreadable image"
            skipped[why] = skipped.get(why, 0) + 1
            continue
        kept.append(r)
        pil.append(im)
    if not kept:
        return {"accuracy": None, "n": 0, "skipped": skipped}
    iv = scorer.images(pil)
    pos = scorer.texts([r["pos"] for r in kept])
    neg = scorer.texts([r["neg"] for r in kept])
    correct = ((iv * pos).sum(1) > (iv * neg).sum(1)).tolist()
    res: dict[str, Any] = {"accuracy": sum(correct) / len(correct), "n": len(correct), "skipped": skipped}
    groups: dict[str, list[bool]] = {}
    for r, c in zip(kept, correct):
        if r.get("group") is not None:
            groups.setdefault(r["group"], []).append(c)
    if groups:
        res["macro_accuracy"] = sum(sum(v) / len(v) for v in groups.values()) / len(groups)
        res["n_groups"] = len(groups)
    return res


def sugarcrepe_accuracy(scorer: Scorer, folder: Path, images: Path) -> dict[str, Any]:
    """One accuracy per subset file `{id: {filename, caption, negative_caption}}`."""
    files = sorted(Path(folder).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no SugarCrepe-format *.json in {folder}")
    out = {}
    for f in files:
        data = json.loads(f.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{f}: expected {{id: {{filename, caption, negative_caption}}}}")
        rows = []
        for k, v in data.items():
            if not all(x in v for x in ("filename", "caption", "negative_caption")):
                raise ValueError(f"{f}: record {k} lacks filename/caption/negative_caption")
            rows.append({"image": v["filename"], "pos": v["caption"], "neg": v["negative_caption"]})
        out[f.stem] = pairwise_accuracy(scorer, rows, images)
    accs = [v["accuracy"] for v in out.values() if v["accuracy"] is not None]
    return {"subsets": out, "mean_accuracy": sum(accs) / len(accs) if accs else None}


def aro_accuracy(scorer: Scorer, file: Path, images: Path) -> dict[str, Any]:
    """ARO VG-Relation / VG-Attribution JSON: crop to the box, true vs false caption, macro accuracy."""
    data = json.loads(Path(file).read_text())
    if not isinstance(data, list):
        raise ValueError(f"{file}: ARO format is a list of records")
    rows = []
    for i, r in enumerate(data):
        if "true_caption" not in r or "false_caption" not in r or "image_path" not in r:
            raise ValueError(f"{file}: record {i} lacks image_path/true_caption/false_caption")
        group = r.get("relation_name") or ("_".join(r["attributes"]) if r.get("attributes") else None)
        crop = [r.get(k, 0) for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h")] if "bbox_w" in r else None
        rows.append({"image": r["image_path"], "pos": r["true_caption"], "neg": r["false_caption"],
                     "crop": crop, "group": group})
    return pairwise_accuracy(scorer, rows, images)


def zeroshot_accuracy(scorer: Scorer, folder: Path) -> dict[str, Any]:
    """Image folder, one subfolder per class; optional classnames.txt (sorted order) and templates.txt."""
    folder = Path(folder)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise ValueError(f"zero-shot folder {folder} needs at least two class subfolders")
    names = classes
    if (folder / "classnames.txt").exists():
        lines = [ln.strip() for ln in (folder / "classnames.txt").read_text().splitlines() if ln.strip()]
        if len(lines) != len(classes):
            raise ValueError(f"{folder}/classnames.txt has {len(lines)} names for {len(classes)} class folders")
        names = lines
    templates = list(DEFAULT_TEMPLATES)
    if (folder / "templates.txt").exists():
        templates = [ln.strip() for ln in (folder / "templates.txt").read_text().splitlines() if "{c}" in ln]
    cls_emb = []
    for n in names:
        e = scorer.texts([t.replace("{c}", n) for t in templates]).mean(0)
        cls_emb.append(F.normalize(e, dim=0))
    W = torch.stack(cls_emb)
    pil, labels, skipped = [], [], 0
    for ci, c in enumerate(classes):
        for p in sorted((folder / c).iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                try:
                    pil.append(_open(p))
                    labels.append(ci)
                except OSError:
                    skipped += 1
    if not pil:
        raise ValueError(f"zero-shot folder {folder} holds no readable images")
    logits = scorer.images(pil) @ W.T
    y = torch.tensor(labels)
    k5 = min(5, len(classes))
    top = logits.topk(k5, dim=1).indices
    return {"top1": float((top[:, 0] == y).float().mean()), "top5": float((top == y[:, None]).any(1).float().mean()),
            "n": len(labels), "classes": len(classes), "skipped": skipped, "templates": len(templates)}


def retrieval_recall(scorer: Scorer, shards: Iterable[str]) -> dict[str, Any]:
    """image→text and text→image R@1/5/10 over every sample (all captions) of the shards."""
    import io

    from PIL import Image

    from clusterbuild.contract import iter_samples
    from train.data import resolve_shards

    pil, texts, owner = [], [], []
    for s in iter_samples(resolve_shards(list(shards))):
        try:
            with Image.open(io.BytesIO(s.image)) as im:
                pil.append(im.convert("RGB"))
        except OSError:
            continue
        caps = s.meta.get("captions") or [s.txt]
        texts += caps
        owner += [len(pil) - 1] * len(caps)
    if not pil:
        raise ValueError(f"no readable samples in {list(shards)}")
    sim = scorer.images(pil) @ scorer.texts(texts).T  # [N images, M texts]
    own = torch.tensor(owner)
    res: dict[str, Any] = {"n_images": len(pil), "n_texts": len(texts)}
    for k in (1, 5, 10):
        ki = min(k, sim.shape[1])
        hit_i2t = (own[sim.topk(ki, dim=1).indices] == torch.arange(len(pil))[:, None]).any(1)
        kt = min(k, sim.shape[0])
        hit_t2i = (sim.T.topk(kt, dim=1).indices == own[:, None]).any(1)
        res[f"i2t_R@{k}"] = float(hit_i2t.float().mean())
        res[f"t2i_R@{k}"] = float(hit_t2i.float().mean())
    return res


def bar_chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars: dict[str, float] = {}
    for name, sub in (results.get("sugarcrepe") or {}).get("subsets", {}).items():
        if sub["accuracy"] is not None:
            bars[f"sc/{name}"] = sub["accuracy"]
    for name, r in (results.get("aro") or {}).items():
        if r.get("macro_accuracy", r.get("accuracy")) is not None:
            bars[f"aro/{name}"] = r.get("macro_accuracy", r["accuracy"])
    if results.get("zeroshot"):
        bars["zs/top1"], bars["zs/top5"] = results["zeroshot"]["top1"], results["zeroshot"]["top5"]
    for k in ("i2t_R@1", "t2i_R@1", "i2t_R@5", "t2i_R@5"):
        if results.get("retrieval") and k in results["retrieval"]:
            bars[f"ret/{k}"] = results["retrieval"][k]
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(bars) + 1), 3.5))
    ax.bar(range(len(bars)), list(bars.values()))
    ax.set_xticks(range(len(bars)), list(bars), rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1), ax.set_ylabel("accuracy / recall")
    fig.tight_layout(), fig.savefig(path, dpi=100), plt.close(fig)


def evaluate(checkpoint: str | Path, out: str | Path | None = None, *, sugarcrepe: Path | None = None,
             aro: list[Path] | Path | None = None, images: Path | None = None, zeroshot: Path | None = None,
             retrieval: list[str] | None = None, model: str | None = None, batch_size: int = 64,
             device: str = "cpu", show_progress: bool = False) -> dict[str, Any]:
    """Run the requested evaluations; writes `out` (JSON) and `out`.png (bar chart) when given.
    `show_progress`: a bar per evaluation on stderr, counting the texts and images embedded."""
    if not any((sugarcrepe, aro, zeroshot, retrieval)):
        raise ValueError("nothing to evaluate: give --sugarcrepe, --aro, --zeroshot or --retrieval")
    if (sugarcrepe or aro) and images is None:
        raise ValueError("--sugarcrepe/--aro need --images DIR")
    from kgclip.progress import progress_bar

    scorer = load_scorer(checkpoint, device, batch_size, model)
    res: dict[str, Any] = {"checkpoint": str(checkpoint)}
    tasks: list[tuple[str, Any]] = []
    if sugarcrepe:
        tasks.append(("sugarcrepe", lambda: sugarcrepe_accuracy(scorer, Path(sugarcrepe), Path(images))))
    if aro:
        files = [aro] if isinstance(aro, (str, Path)) else list(aro)
        tasks.append(("aro", lambda: {Path(f).stem: aro_accuracy(scorer, Path(f), Path(images)) for f in files}))
    if zeroshot:
        tasks.append(("zeroshot", lambda: zeroshot_accuracy(scorer, Path(zeroshot))))
    if retrieval:
        tasks.append(("retrieval", lambda: retrieval_recall(scorer, retrieval)))
    for name, run in tasks:
        with progress_bar(f"eval {name}", None, show_progress, unit="embeddings") as bar:
            scorer.bar = bar
            res[name] = run()
    scorer.bar = None
    if out is not None:
        from kgclip.atomic import atomic_write_json

        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out, res)
        bar_chart(res, out.with_suffix(".png"))
    return res
