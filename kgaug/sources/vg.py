"""Visual Genome's own JSON (and the `kgaug synth` world, which writes the same format), streamed.

Either `scene_graphs.json`, or `objects.json` + `attributes.json` + `relationships.json` (parallel
arrays by image, read in lockstep); `image_data.json` (which images exist and where their pixels
are), `region_descriptions.json` (phrases kept as captions), `sensitive.json` ({image_id: {tag: value}}).
Memory stays bounded: only the current image's records, plus one small int -> path map for
image_data, are held.

`scene_graphs.json` without region captions can also be read in byte ranges by several processes
(`plan_parts`, `read_part`); concatenated in range order, their records and skips are exactly those
of `read_vg` (positions in skip messages are made absolute by the caller, see `RelativeWhere`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from kgaug.jsonstream import Malformed, NotAnArray, Part, iter_array, split_points
from kgaug.scene_graph import GraphBuilder
from kgaug.sources import IMAGE_SUFFIXES, InputError, Record, RelativeWhere, Skip, make_key

LICENSE = {"vg": "CC BY 4.0"}
LOOKAHEAD: Final = 4096  # records buffered while re-aligning parallel arrays that disagree on order


def _has_image_id(x: object) -> bool:
    return isinstance(x, dict) and ("image_id" in x or "id" in x)


def _image_id(x: dict) -> object:
    return x.get("image_id", x.get("id"))


def _is_image_record(x: object) -> bool:
    """A top-level scene_graphs.json record (what a range start must decode to): VG's nested objects
    never carry both keys."""
    return isinstance(x, dict) and "image_id" in x and "objects" in x


def _where(prefix: str, kind: str, n: int, part: Part | None) -> str | RelativeWhere:
    return f"{prefix}{n}" if part is None else RelativeWhere(prefix, kind, n)


def _stream(path: Path, skips: list[Skip], part: Part | None = None) -> Iterator[dict]:
    try:
        for i, item in enumerate(iter_array(path, _has_image_id, part=part)):
            if isinstance(item, Malformed):
                skips.append(Skip(_where(f"{path.name} at character ", "character", item.offset, part), item.reason))
            elif not isinstance(item, dict):
                skips.append(Skip(_where(f"{path.name} item ", "item", i, part), "record is not a JSON object"))
            elif _image_id(item) is None:
                skips.append(Skip(_where(f"{path.name} item ", "item", i, part), "record without image_id"))
            else:
                yield item
    except NotAnArray as e:
        raise InputError(str(e)) from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e})") from None


class _Aligned:
    """Records of a parallel file looked up by image id, reading ahead a bounded amount."""

    def __init__(self, stream: Iterator[dict] | None, name: str) -> None:
        self.stream, self.name = stream, name
        self.pending: dict[object, dict] = {}

    def get(self, image_id: object) -> dict | None:
        if image_id in self.pending:
            return self.pending.pop(image_id)
        if self.stream is None:
            return None
        for rec in self.stream:
            iid = _image_id(rec)
            if iid == image_id:
                return rec
            if len(self.pending) < LOOKAHEAD:
                self.pending[iid] = rec
            else:
                break
        return None


def _box(o: dict):
    try:
        x, y, w, h = o["x"], o["y"], o["w"], o["h"]
    except KeyError:
        x = None  # the general case below says what a missing field gives
    if type(x) is int and type(y) is int and type(w) is int and type(h) is int:  # VG's usual box: as is
        return x, y, w, h
    try:
        return int(o["x"]), int(o["y"]), int(o["w"]), int(o["h"])
    except (KeyError, TypeError, ValueError):
        return None


def _names(o: dict) -> list:
    names = o.get("names")
    if isinstance(names, list):
        return names
    return [o["name"]] if isinstance(o.get("name"), str) else []


def _end(b: GraphBuilder, alias: dict[str, str], r: dict, side: str, side_id: str) -> str:
    """Object id of a relationship's subject or object (embedded object or `<side>_id`), added to
    the graph when only the relationship carries it."""
    emb = r.get(side)
    if isinstance(emb, dict) and "object_id" in emb:
        oid = str(emb["object_id"])
        if alias:
            oid = alias.get(oid, oid)
        if oid not in b.ids:
            b.add_object(oid, _names(emb), emb.get("synsets"), None, _box(emb))
        return oid
    oid = str(r.get(side_id))
    if alias:
        oid = alias.get(oid, oid)
    if oid not in b.ids and isinstance(emb, dict):
        b.add_object(oid, _names(emb), emb.get("synsets"), None, _box(emb))
    return oid


def _graph(image_id, objects, attributes, relationships, problems: list[str]):
    b = GraphBuilder()
    alias: dict[str, str] = {}
    # Objects by their raw int id: most relationships (`subject_id`/`object_id` ints, no merged ids, no
    # embedded objects) find their ends here, without converting and hashing the id again (`_end`).
    by_int: dict[int, tuple] = {}  # raw id -> the builder's packed object (its id first)
    ids = b.ids
    for o in objects if isinstance(objects, list) else []:
        if not isinstance(o, dict) or "object_id" not in o:
            problems.append("object record without object_id")
            continue
        raw = o["object_id"]
        oid = str(raw)
        names = o.get("names")
        obj = b.add_object(oid, names if isinstance(names, list) else _names(o), o.get("synsets"),
                           o.get("attributes"), _box(o))
        if obj is not None and type(raw) is int:
            by_int[raw] = obj
        merged = o.get("merged_object_ids")
        if merged:
            for m in merged:
                alias.setdefault(str(m), oid)
    for a in attributes if isinstance(attributes, list) else []:
        if not isinstance(a, dict) or "object_id" not in a:
            continue
        oid = alias.get(str(a["object_id"]), str(a["object_id"]))
        if oid in ids:
            b.add_attributes(oid, a.get("attributes") or [])
        else:
            b.add_object(oid, _names(a), a.get("synsets"), a.get("attributes"), _box(a))
    plain = not alias
    for r in relationships if isinstance(relationships, list) else []:
        if not isinstance(r, dict):
            problems.append("relationship record is not an object")
            continue
        if plain and "subject" not in r and "object" not in r:
            s, t = r.get("subject_id"), r.get("object_id")
            subj = by_int.get(s) if type(s) is int else None
            obj = by_int.get(t) if type(t) is int else None
            if subj is not None and obj is not None:  # what `_end` gives for both, without its work
                b.add_relation(subj[0], r.get("predicate", ""), obj[0], r.get("synsets"))
                continue
        b.add_relation(_end(b, alias, r, "subject", "subject_id"), r.get("predicate", ""),
                       _end(b, alias, r, "object", "object_id"), r.get("synsets"))
    problems.extend(b.problems)
    return b.graph


def _image_index(path: Path, skips: list[Skip]) -> dict[object, str | None]:
    """image id -> path relative to the images folder (from the URL's last two parts)."""
    out: dict[object, str | None] = {}
    for rec in _stream(path, skips):
        url = rec.get("url") if isinstance(rec.get("url"), str) else None
        out[_image_id(rec)] = "/".join(url.split("/")[-2:]) if url else None
    return out


def find_images_dir(vg_dir: Path) -> Path | None:
    if (vg_dir / "images").is_dir():
        return vg_dir / "images"
    if any(p.is_dir() for p in vg_dir.glob("VG_100K*")):
        return vg_dir
    return None


def _resolve(images: Path, image_id, rel: str | None) -> Path | None:
    cands = []
    if rel:
        cands += [images / rel, images / rel.split("/")[-1]]
    cands += [images / f"{image_id}{s}" for s in IMAGE_SUFFIXES]
    cands += [d / f"{image_id}.jpg" for d in sorted(images.glob("VG_100K*"))]
    return next((c for c in cands if c.is_file()), None)


def _sensitive(vg_dir: Path, given: dict | None) -> dict[str, dict]:
    """{image id: {tag: value}}: the given map, else `sensitive.json` when the folder has one."""
    sens_file = vg_dir / "sensitive.json"
    if given is None and sens_file.exists():
        try:
            given = json.loads(sens_file.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{sens_file}: not valid JSON ({e})") from None
    return {str(k): v for k, v in (given or {}).items() if isinstance(v, dict)}


def read_vg(vg_dir: Path, images: Path | None, source: str = "vg", sensitive: dict | None = None,
            max_region_captions: int = 3) -> Iterator[Record | Skip]:
    vg_dir = Path(vg_dir)
    if not vg_dir.is_dir():
        raise InputError(f"--vg-dir {vg_dir}: not a folder")
    skips: list[Skip] = []
    sg = vg_dir / "scene_graphs.json"
    split = vg_dir / "objects.json"
    if not sg.exists() and not split.exists():
        raise InputError(f"{vg_dir}: neither scene_graphs.json nor objects.json found (Visual Genome JSON expected)")
    index = _image_index(vg_dir / "image_data.json", skips) if (vg_dir / "image_data.json").exists() else None
    yield from _drain(skips)
    if images is None:
        images = find_images_dir(vg_dir)
    sensitive = _sensitive(vg_dir, sensitive)

    if sg.exists():
        primary, pname = _stream(sg, skips), sg.name
        attrs = rels = None
    else:
        primary, pname = _stream(split, skips), split.name
        attrs = _Aligned(_stream(vg_dir / "attributes.json", skips), "attributes.json") \
            if (vg_dir / "attributes.json").exists() else None
        rels = _Aligned(_stream(vg_dir / "relationships.json", skips), "relationships.json") \
            if (vg_dir / "relationships.json").exists() else None
    regions = _Aligned(_stream(vg_dir / "region_descriptions.json", skips), "region_descriptions.json") \
        if max_region_captions and (vg_dir / "region_descriptions.json").exists() else None

    for rec in primary:
        if skips:
            yield from _drain(skips)
        yield _record(rec, pname, source, index, images, sensitive, attrs, rels, regions, max_region_captions)
    yield from _drain(skips)


def _record(rec: dict, pname: str, source: str, index: dict | None, images: Path | None, sensitive: dict,
            attrs: _Aligned | None, rels: _Aligned | None, regions: _Aligned | None,
            max_region_captions: int) -> Record | Skip:
    """One primary record (`scene_graphs.json` or `objects.json`) as a Record, or why it is skipped."""
    image_id = _image_id(rec)
    where = f"{pname} image {image_id}"
    if index is not None and image_id not in index:
        return Skip(where, "image id missing from image_data.json")
    problems: list[str] = []
    if attrs is not None or rels is not None:
        a = attrs.get(image_id) if attrs else None
        r = rels.get(image_id) if rels else None
        if attrs is not None and a is None:
            problems.append("no attributes.json record for this image")
        graph = _graph(image_id, rec.get("objects"), (a or {}).get("attributes"),
                       (r or {}).get("relationships"), problems)
    else:
        graph = _graph(image_id, rec.get("objects"), None, rec.get("relationships"), problems)
    if not isinstance(rec.get("objects"), list):
        problems.append("objects is missing or not a list")
    image = None
    if images is not None:
        found = _resolve(images, image_id, index.get(image_id) if index else None)
        if found is None:
            return Skip(where, f"missing image file under {images}")
        image = str(found)
    captions: list[str] = []
    if regions is not None:
        reg = regions.get(image_id)
        for ph in (reg or {}).get("regions") or []:
            p = ph.get("phrase") if isinstance(ph, dict) else None
            if isinstance(p, str) and p.strip() and p.strip() not in captions:
                captions.append(p.strip())
            if len(captions) >= max_region_captions:
                break
    tags = {str(k): str(v) for k, v in sensitive.get(str(image_id), {}).items()} if sensitive else {}
    return Record(make_key(source, image_id), source, image, captions, graph, tags, LICENSE.get(source), problems)


@dataclass
class PartPlan:
    """A parallel read of `scene_graphs.json`: what every range shares (read once, before forking)."""

    path: Path
    starts: list[int]  # byte offset of each range's first record (`jsonstream.split_points`)
    source: str
    index: dict | None
    images: Path | None
    sensitive: dict


def plan_parts(vg_dir: Path, images: Path | None, source: str, sensitive: dict | None, max_region_captions: int,
               ranges: int) -> tuple[list[Skip], PartPlan] | None:
    """The skips `read_vg` reports before its first record, and the plan of `ranges` ranges; None when
    this input is read by `read_vg` alone (split files, or region captions read in lockstep)."""
    vg_dir = Path(vg_dir)
    sg = vg_dir / "scene_graphs.json"
    if not vg_dir.is_dir() or not sg.exists():
        return None
    if max_region_captions and (vg_dir / "region_descriptions.json").exists():
        return None
    skips: list[Skip] = []
    index = _image_index(vg_dir / "image_data.json", skips) if (vg_dir / "image_data.json").exists() else None
    if images is None:
        images = find_images_dir(vg_dir)
    sensitive = _sensitive(vg_dir, sensitive)
    starts = split_points(sg, ranges, _is_image_record)
    return skips, PartPlan(sg, starts, source, index, images, sensitive)


def read_part(plan: PartPlan, part: Part) -> Iterator[Record | Skip]:
    """The records and skips of one range (positions in skips relative to the range: `RelativeWhere`)."""
    skips: list[Skip] = []
    for rec in _stream(plan.path, skips, part):
        if skips:
            yield from _drain(skips)
        yield _record(rec, plan.path.name, plan.source, plan.index, plan.images, plan.sensitive, None, None, None, 0)
    yield from _drain(skips)


def _drain(skips: list[Skip]) -> Iterator[Skip]:
    while skips:
        yield skips.pop(0)
