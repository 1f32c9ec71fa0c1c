"""Image loading for embedding and sharding: guarded decode, and re-encoding only when needed.

Every image goes through `open_checked` (embedding) and `prepare` (shard bytes) with the same
checks, so a row the embedder accepted is a row the writer can store. Bytes are kept as they are
when they are already what every CLIP loader expects (8-bit RGB JPEG/PNG/WebP no larger than
`max_side`); otherwise the image is converted to RGB and re-encoded: lossless sources (PNG, ...)
stay PNG, lossy ones become JPEG.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile

DEFAULT_MAX_SIDE = 4096
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold (~0.25 GiB RGBA)
JPEG_QUALITY = 95
_KEEP_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
_LOSSY = {"JPEG", "WEBP", "MPO"}


class BadImage(ValueError):
    """An image that cannot be used; `reason` is a short label for the run report."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class PreparedImage:
    data: bytes
    ext: str  # contract.IMAGE_EXTS
    width: int
    height: int
    reencoded: bool
    why: str  # why it was re-encoded ("" when the original bytes are kept)


def read_bytes(path: str | Path | None) -> bytes:
    if path is None or str(path) == "":
        raise BadImage("no_image", "row has no image")
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise BadImage("missing_image", str(p)) from None
    except OSError as e:
        raise BadImage("unreadable_image", f"{p}: {e}") from None
    if not data:
        raise BadImage("empty_image", f"{p} is zero bytes")
    return data


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open and fully decode `data`, refusing images above `max_pixels` before decoding them."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, not a grey half-image
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise BadImage("decompression_bomb", str(e)) from None
    except Exception as e:  # PIL raises many types for unknown/corrupt headers
        raise BadImage("undecodable_image", f"{type(e).__name__}: {e}") from None
    w, h = im.size
    if w * h > max_pixels:
        raise BadImage("decompression_bomb", f"{w}x{h} = {w * h} pixels > {max_pixels}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
    except Exception as e:
        raise BadImage("undecodable_image", f"{type(e).__name__}: {e}") from None
    return im


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB: transparency composited on white, 16-bit scaled down, CMYK/palette converted."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        a = np.asarray(im, dtype=np.uint32 if im.mode == "I" else np.uint16).astype(np.float64)
        peak = 65535.0 if im.mode != "I" or a.max() > 255 else 255.0
        im = Image.fromarray(np.clip(a * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8), "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, rgba)
    return im if im.mode == "RGB" else im.convert("RGB")


def _shrink(im: Image.Image, max_side: int) -> Image.Image:
    w, h = im.size
    scale = max_side / max(w, h)
    return im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC)


def open_checked(path: str | Path | None, max_side: int = DEFAULT_MAX_SIDE,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The image at `path` as an RGB PIL image (what the embedder feeds the model), or BadImage."""
    im = to_rgb(_open(read_bytes(path), max_pixels))
    return _shrink(im, max_side) if max(im.size) > max_side else im


def prepare(path: str | Path | None, max_side: int = DEFAULT_MAX_SIDE,
            max_pixels: int = DEFAULT_MAX_PIXELS) -> PreparedImage:
    """Shard bytes for the image at `path`: the original bytes when fine, else a re-encoding."""
    return prepare_bytes(read_bytes(path), max_side=max_side, max_pixels=max_pixels)


def prepare_bytes(data: bytes, max_side: int = DEFAULT_MAX_SIDE,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> PreparedImage:
    im = _open(data, max_pixels)
    fmt = im.format or ""
    why = []
    if fmt not in _KEEP_FORMATS:
        why.append(f"format {fmt or 'unknown'}")
    if im.mode != "RGB":
        why.append(f"mode {im.mode}")
    if max(im.size) > max_side:
        why.append(f"side {max(im.size)} > {max_side}")
    if not why:
        return PreparedImage(data, _KEEP_FORMATS[fmt], im.width, im.height, False, "")
    out = to_rgb(im)
    if max(out.size) > max_side:
        out = _shrink(out, max_side)
    buf = io.BytesIO()
    if fmt in _LOSSY:
        out.save(buf, format="JPEG", quality=JPEG_QUALITY)
        ext = "jpg"
    else:
        out.save(buf, format="PNG", optimize=False)
        ext = "png"
    return PreparedImage(buf.getvalue(), ext, out.width, out.height, True, ", ".join(why))
