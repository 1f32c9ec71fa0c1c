"""Embedding a kgaug table with open_clip: images and texts, float16, L2-normalised, resumable.

Work is cut into chunks of `chunk_rows` table rows; each finished chunk is saved atomically
(`chunks/chunk-NNNNN.npz`), so an interrupted run redoes at most one chunk. When all chunks are
there they are joined into the arrays below and the chunks are deleted. A fingerprint of the inputs
(model, weights, the rows' keys/images/texts, options) decides whether a cache can be reused.

Cache folder (default `OUT/embeddings/`):
    manifest.json   fingerprint, counts, complete flag
    image.npy       n_rows x d float16 (zero rows where the row has no usable image)
    has_image.npy   n_rows bool
    status.json     {"keys": [...], "image_status": ["" | reason, ...]}
    text.npy        n_texts x d float16; text_row.npy (int32 row index), text_kind.npy (int8 KIND_*)
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clusterbuild import images
from kgclip.atomic import atomic_write_bytes, atomic_write_json

KIND_CAPTION, KIND_PSEUDO = 0, 1
MANIFEST = "manifest.json"
DEFAULT_CHUNK_ROWS = 4096


@dataclass(frozen=True)
class EmbedRow:
    """What the embedder needs of one kgaug row."""

    key: str
    image: str | None
    texts: tuple[tuple[str, int], ...]  # (text, KIND_*)


def embed_row(row: dict) -> EmbedRow:
    texts = [(c, KIND_CAPTION) for c in row.get("captions") or [] if c]
    texts += [(p["text"], KIND_PSEUDO) for p in row.get("pseudo_captions") or [] if p and p.get("text")]
    return EmbedRow(row["key"], row.get("image") or None, tuple(texts))


@dataclass
class Embeddings:
    keys: list[str]
    image: np.ndarray
    has_image: np.ndarray
    image_status: list[str]
    text: np.ndarray
    text_row: np.ndarray
    text_kind: np.ndarray
    manifest: dict = field(default_factory=dict)

    def row_text(self) -> np.ndarray:
        """Per row: the normalised mean of its caption and pseudo-caption embeddings (float32)."""
        n, d = self.image.shape
        out = np.zeros((n, d), np.float32)
        np.add.at(out, self.text_row, self.text.astype(np.float32))
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norm, out=np.zeros_like(out), where=norm > 0)

    def cluster_vectors(self) -> np.ndarray:
        """What k-means sees: the image embedding, or the text mean for rows without an image."""
        x = self.image.astype(np.float32)
        if not self.has_image.all():
            x[~self.has_image] = self.row_text()[~self.has_image]
        return x


def fingerprint(rows: Sequence[EmbedRow], model_name: str, pretrained: str | None, model_cfg: dict,
                chunk_rows: int, max_side: int, max_pixels: int) -> dict:
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps([r.key, r.image, r.texts], ensure_ascii=False).encode())
    return {
        "model": model_name, "pretrained": pretrained,
        "model_cfg": hashlib.sha256(json.dumps(model_cfg, sort_keys=True).encode()).hexdigest()[:16],
        "chunk_rows": chunk_rows, "max_side": max_side,
        "max_pixels": max_pixels, "rows": len(rows), "rows_sha256": h.hexdigest(),
    }


class Encoder:
    """Batched open_clip encoding of PIL images and strings into L2-normalised float32 arrays."""

    def __init__(self, loaded, device: str = "cpu"):
        import torch

        self.torch = torch
        self.model = loaded.model.to(device).eval()
        self.preprocess = loaded.preprocess
        self.tokenizer = loaded.tokenizer
        self.device = device

    def _finish(self, feats) -> np.ndarray:
        feats = self.torch.nn.functional.normalize(feats.float(), dim=-1)
        return feats.cpu().numpy()

    def images(self, pil_images: list) -> np.ndarray:
        return self.image_tensors(self.torch.stack([self.preprocess(im) for im in pil_images]))

    def image_tensors(self, x) -> np.ndarray:
        with self.torch.inference_mode():
            return self._finish(self.model.encode_image(x.to(self.device)))

    def texts(self, texts: list[str]) -> np.ndarray:
        with self.torch.inference_mode():
            return self._finish(self.model.encode_text(self.tokenizer(texts).to(self.device)))


class _ImageSet:
    """Map-style dataset: row position -> (position, preprocessed tensor or None, skip reason)."""

    def __init__(self, rows: Sequence[EmbedRow], preprocess, max_side: int, max_pixels: int):
        self.paths = [r.image for r in rows]
        self.preprocess, self.max_side, self.max_pixels = preprocess, max_side, max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            return i, self.preprocess(images.open_checked(self.paths[i], self.max_side, self.max_pixels)), ""
        except images.BadImage as e:
            return i, None, e.reason


def _as_list(items):
    return items


def _embed_chunk(enc: Encoder, rows: Sequence[EmbedRow], first: int, batch_size: int,
                 max_side: int, max_pixels: int, dim: int, tick: Callable[[int], None],
                 workers: int = 0) -> dict:
    from torch.utils.data import DataLoader

    n = len(rows)
    img = np.zeros((n, dim), np.float16)
    has = np.zeros(n, bool)
    status = [""] * n
    # decoding is the slow part on CPU: DataLoader workers decode the next batches while the model runs
    loader = DataLoader(_ImageSet(rows, enc.preprocess, max_side, max_pixels), batch_size=batch_size,
                        num_workers=workers, collate_fn=_as_list, shuffle=False)
    for batch in loader:
        good = [(i, t) for i, t, _ in batch if t is not None]
        for i, _, why in batch:
            status[i] = why
        if good:
            feats = enc.image_tensors(enc.torch.stack([t for _, t in good]))
            for (i, _), f in zip(good, feats):
                img[i] = f.astype(np.float16)
                has[i] = True
        tick(len(batch))
    flat = [(t, k, first + i) for i, r in enumerate(rows) for t, k in r.texts]
    txt = np.zeros((len(flat), dim), np.float16)
    for s in range(0, len(flat), batch_size):
        txt[s:s + batch_size] = enc.texts([t for t, _, _ in flat[s:s + batch_size]]).astype(np.float16)
    return {
        "image": img, "has_image": has, "status": np.array(status, dtype=str),
        "text": txt, "text_row": np.array([r for _, _, r in flat], np.int32),
        "text_kind": np.array([k for _, k, _ in flat], np.int8),
    }


def _save_npz(path: Path, arrays: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _save_npy(path: Path, a: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, a)
    atomic_write_bytes(path, buf.getvalue())


def load(cache: Path) -> Embeddings:
    cache = Path(cache)
    man = json.loads((cache / MANIFEST).read_text())
    st = json.loads((cache / "status.json").read_text())
    return Embeddings(
        keys=st["keys"], image=np.load(cache / "image.npy"), has_image=np.load(cache / "has_image.npy"),
        image_status=st["image_status"], text=np.load(cache / "text.npy"),
        text_row=np.load(cache / "text_row.npy"), text_kind=np.load(cache / "text_kind.npy"), manifest=man)


def cached(cache: Path, fp: dict) -> bool:
    try:
        man = json.loads((Path(cache) / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return bool(man.get("complete")) and man.get("fingerprint") == fp


def embed_rows(rows: Sequence[EmbedRow], loaded, cache: Path, device: str = "cpu", batch_size: int = 64,
               chunk_rows: int = DEFAULT_CHUNK_ROWS, max_side: int = images.DEFAULT_MAX_SIDE,
               max_pixels: int = images.DEFAULT_MAX_PIXELS, workers: int = 0,
               progress: bool = True, log: Callable[[str], None] = print) -> Embeddings:
    """Embed `rows` into `cache` (reusing finished chunks of an identical earlier run)."""
    from kgclip.progress import progress_bar

    cache = Path(cache)
    fp = fingerprint(rows, loaded.name, loaded.pretrained, loaded.model_cfg, chunk_rows, max_side, max_pixels)
    if cached(cache, fp):
        log(f"embeddings: reusing {cache} ({len(rows)} rows)")
        return load(cache)
    chunks_dir = cache / "chunks"
    old = None
    try:
        old = json.loads((cache / MANIFEST).read_text()).get("fingerprint")
    except (OSError, ValueError):
        pass
    if old != fp and chunks_dir.exists():
        shutil.rmtree(chunks_dir)  # chunks of other inputs or another model: not reusable
    chunks_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cache / MANIFEST, {"fingerprint": fp, "complete": False})
    dim = int(loaded.model_cfg.get("embed_dim") or 0) or _probe_dim(loaded)
    enc = None
    n_chunks = (len(rows) + chunk_rows - 1) // chunk_rows
    parts = []
    with progress_bar("embed", len(rows), progress, unit="rows") as bar:
        for c in range(n_chunks):
            path = chunks_dir / f"chunk-{c:05d}.npz"
            lo, hi = c * chunk_rows, min(len(rows), (c + 1) * chunk_rows)
            if path.is_file():
                with np.load(path) as z:
                    parts.append({k: z[k] for k in z.files})
                bar.advance(hi - lo)
                continue
            if enc is None:
                enc = Encoder(loaded, device)
            part = _embed_chunk(enc, rows[lo:hi], lo, batch_size, max_side, max_pixels, dim, bar.advance, workers)
            _save_npz(path, part)
            parts.append(part)
    if not parts:
        parts = [{"image": np.zeros((0, dim), np.float16), "has_image": np.zeros(0, bool),
                  "status": np.zeros(0, dtype=str), "text": np.zeros((0, dim), np.float16),
                  "text_row": np.zeros(0, np.int32), "text_kind": np.zeros(0, np.int8)}]
    joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    for name in ("image", "has_image", "text", "text_row", "text_kind"):
        _save_npy(cache / f"{name}.npy", joined[name])
    status = [str(s) for s in joined["status"]]
    atomic_write_json(cache / "status.json", {"keys": [r.key for r in rows], "image_status": status})
    counts = {
        "rows": len(rows), "images": int(joined["has_image"].sum()),
        "text_only_rows": int((~joined["has_image"]).sum()), "texts": int(len(joined["text"])),
        "image_status": {s: status.count(s) for s in sorted(set(status)) if s},
    }
    atomic_write_json(cache / MANIFEST, {"fingerprint": fp, "complete": True, "counts": counts, "dim": dim})
    shutil.rmtree(chunks_dir, ignore_errors=True)
    log(f"embeddings: {counts['images']} images, {counts['texts']} texts, "
        f"{counts['text_only_rows']} rows text-only -> {cache}")
    return load(cache)


def _probe_dim(loaded) -> int:
    import torch

    with torch.inference_mode():
        return int(loaded.model.encode_text(loaded.tokenizer(["a"])).shape[-1])
