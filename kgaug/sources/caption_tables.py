"""Caption sources: COCO caption JSON, and CSV / JSONL / parquet tables of image path + caption
(column names configurable, several rows per image). Yields one `Record` per image with its
captions; the scene graph is built later by parsing them."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from kgaug.sources import InputError, Record, Skip, hashed_key, make_key

IMAGE_COLUMNS = ("image", "file_name", "filename", "filepath", "image_path", "path", "url")
CAPTION_COLUMNS = ("caption", "text", "title", "sentence", "raw")


def read_coco(captions: Path, images: Path | None) -> Iterator[Record | Skip]:
    captions = Path(captions)
    if not captions.is_file():
        raise InputError(f"--captions {captions}: file not found")
    try:
        data = json.loads(captions.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{captions}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list) \
            or not isinstance(data.get("images"), list):
        raise InputError(f"{captions}: not a COCO caption file (needs 'images' and 'annotations' lists)")
    licenses = {lic.get("id"): lic.get("name") for lic in data.get("licenses") or [] if isinstance(lic, dict)}
    images_by_id: dict[object, dict] = {}
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            yield Skip(f"{captions.name} images[{i}]", "image entry without id or file_name")
            continue
        images_by_id.setdefault(im["id"], im)
    caps: dict[object, list[str]] = {}
    for i, ann in enumerate(data["annotations"]):
        where = f"{captions.name} annotations[{i}]"
        if not isinstance(ann, dict):
            yield Skip(where, "annotation is not an object")
            continue
        text = ann.get("caption")
        if not isinstance(text, str) or not text.strip():
            yield Skip(where, "empty caption")
            continue
        if ann.get("image_id") not in images_by_id:
            yield Skip(f"{where} (image id {ann.get('image_id')!r})", "caption for an unknown image id")
            continue
        lst = caps.setdefault(ann["image_id"], [])
        if text.strip() not in lst:
            lst.append(text.strip())
    base = Path(images) if images else captions.parent
    for image_id, im in images_by_id.items():
        where = f"{captions.name} image {image_id}"
        if image_id not in caps:
            yield Skip(where, "image without captions")
            continue
        path = base / im["file_name"]
        if not path.is_file():  # one reason per folder, so a wrong --images groups into one line
            yield Skip(f"{where}: {path}", f"missing image file under {path.parent}")
            continue
        yield Record(make_key("coco", image_id), "coco", str(path), caps[image_id],
                     license=licenses.get(im.get("license")))


def _rows(path: Path) -> Iterator[dict]:
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            with open(path, newline="", encoding="utf-8") as f:
                yield from csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
        elif suffix in (".jsonl", ".ndjson"):
            with open(path, encoding="utf-8") as f:
                for i, line in enumerate(f):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        yield {"__error__": f"line {i + 1}: malformed JSON ({e.msg})"}
                        continue
                    yield row if isinstance(row, dict) else {"__error__": f"line {i + 1}: not a JSON object"}
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
                yield from batch.to_pylist()
        else:
            raise InputError(f"{path}: unknown caption table format (use .csv, .tsv, .jsonl or .parquet)")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e})") from None
    except (OSError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"{path}: cannot read ({e})") from None


def _pick(columns: list[str], wanted: str | None, defaults: tuple[str, ...], path: Path, what: str) -> str:
    if wanted:
        if wanted not in columns:
            raise InputError(f"{path}: no column {wanted!r} (columns: {', '.join(columns)})")
        return wanted
    for c in defaults:
        if c in columns:
            return c
    raise InputError(f"{path}: no {what} column found among {', '.join(columns)}; name it with "
                     f"--{what}-column")


def read_caption_table(path: Path, images: Path | None, image_column: str | None = None,
                       caption_column: str | None = None, id_column: str | None = None,
                       source: str = "captions") -> Iterator[Record | Skip]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--captions {path}: file not found")
    groups: dict[str, dict] = {}
    img_col = cap_col = None
    for i, row in enumerate(_rows(path)):
        where = f"{path.name} row {i + 1}"
        if "__error__" in row:
            yield Skip(f"{path.name} {row['__error__'].split(':')[0]}", row["__error__"].split(": ", 1)[-1])
            continue
        if img_col is None:
            img_col = _pick(list(row), image_column, IMAGE_COLUMNS, path, "image")
            cap_col = _pick(list(row), caption_column, CAPTION_COLUMNS, path, "caption")
        image, text = row.get(img_col), row.get(cap_col)
        if not isinstance(image, str) or not image.strip():
            yield Skip(where, "row without an image path")
            continue
        if not isinstance(text, str) or not text.strip():
            yield Skip(where, "empty caption")
            continue
        g = groups.setdefault(image, {"captions": [], "id": row.get(id_column) if id_column else None})
        if text.strip() not in g["captions"]:
            g["captions"].append(text.strip())
    if img_col is None:
        raise InputError(f"{path}: no rows")
    stems = [Path(k).stem for k in groups]
    unique = len(set(stems)) == len(stems)
    base = Path(images) if images else path.parent
    for image, g in groups.items():
        p = Path(image) if Path(image).is_absolute() else base / image
        if not p.is_file():
            yield Skip(f"{path.name} image {image}: {p}", f"missing image file under {p.parent}")
            continue
        if g["id"] not in (None, ""):
            key = make_key(source, g["id"])
        elif unique:
            key = make_key(source, Path(image).stem)
        else:
            key = hashed_key(source, image)
        yield Record(key, source, str(p), g["captions"])
