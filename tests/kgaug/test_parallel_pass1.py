"""Pass 1 in forked workers (byte ranges of scene_graphs.json) gives the bytes of the sequential read."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from kgaug.build import BuildConfig, build
from kgaug.engine.local import parallel_plan
from kgaug.jsonstream import Malformed, Part, iter_array, split_points
from kgaug.kg import counts as kg_counts
from kgaug.table import REPORT_FILE, TABLE_DIR

from .helpers import vg_image


def _accept(x: object) -> bool:
    return isinstance(x, dict) and "image_id" in x


def _is_record(x: object) -> bool:
    return isinstance(x, dict) and "image_id" in x and "objects" in x


def _read_in_parts(path: Path, starts: list[int], chunk: int) -> list:
    """Items of every range, following each range's end to the next one read, with Malformed offsets
    made absolute: what a parallel reader merges."""
    out, k, chars = [], 0, 0
    while k is not None:
        part = Part(starts, k)
        for x in iter_array(path, _accept, chunk=chunk, part=part):
            out.append(Malformed(x.offset + chars, x.reason) if isinstance(x, Malformed) else x)
        chars += part.end_char
        k = part.end_range
    return out


def _array_text(rng: random.Random, n: int) -> str:
    """A JSON array of image records with the damage real files show: broken items, missing commas,
    non-objects, nested objects that look like records, non-ASCII text, CRLF line ends."""
    items = []
    for i in range(n):
        d = {"image_id": i, "objects": [{"object_id": j, "names": [rng.choice(["dog", "café", "tür"])],
                                         "attributes": ["x" * rng.randrange(30)]} for j in range(rng.randrange(4))]}
        roll = rng.random()
        if roll < 0.08:
            items.append(f'{{"image_id": {i}, "objects": [{{"object_id": 1, "names": ["cut')
        elif roll < 0.12:
            items.append(str(i))
        elif roll < 0.16:
            items.append(json.dumps({"image_id": i, "objects": [{"image_id": 7, "objects": []}]}))
        else:
            items.append(json.dumps(d, ensure_ascii=rng.random() < 0.5))
    text = "["
    for i, it in enumerate(items):
        if i:
            text += rng.choice([", ", ",\r\n", ",\n  ", " "])  # " ": a missing comma
        text += it
    return text + rng.choice(["]", "]\n", ""])  # "": truncated


@pytest.mark.parametrize("seed", range(12))
def test_ranges_read_exactly_the_sequential_items(tmp_path: Path, seed: int):
    rng = random.Random(seed)
    p = tmp_path / "a.json"
    p.write_bytes(_array_text(rng, 60).encode("utf-8"))
    whole = list(iter_array(p, _accept, chunk=64))
    for n in (2, 3, 7, 20):
        starts = split_points(p, n, _is_record, window=256)
        assert starts == sorted(set(starts)) and starts[0] == 0
        assert _read_in_parts(p, starts, chunk=rng.choice([16, 64, 4096])) == whole


def test_a_range_start_inside_a_record_is_read_through(tmp_path: Path):
    """A nested object that looks like a record is not a range start: the range before reads on."""
    recs = [{"image_id": 1, "objects": []}, {"image_id": 2, "objects": [{"image_id": 9, "objects": []}]},
            {"image_id": 3, "objects": []}, {"image_id": 4, "objects": []}]
    text = json.dumps(recs)
    p = tmp_path / "a.json"
    p.write_text(text)
    nested = text.index('{"image_id": 9')
    third = text.index('{"image_id": 3')
    fourth = text.index('{"image_id": 4')
    whole = list(iter_array(p, _accept))
    assert _read_in_parts(p, [0, nested, third], chunk=8) == whole
    assert _read_in_parts(p, [0, nested, fourth], chunk=8) == whole
    part = Part([0, nested, fourth], 0)
    assert len(list(iter_array(p, _accept, part=part))) == 3 and part.end_range == 2


def _vg_with_damage(folder: Path, n: int = 40) -> Path:
    """scene_graphs.json with bad records spread through it (every range of a small split gets some)."""
    rng = random.Random(5)
    names = ["dog", "cat", "man", "woman", "car", "tree", "hat", "table", "cup", "bike", "horse", "grass"]
    items = []
    for i in range(1, n + 1):
        objs = [(i * 100 + j, [rng.choice(names)], rng.sample(["red", "black", "small", "wooden"], 2))
                for j in range(rng.randrange(2, 7))]
        rels = [(objs[j][0], rng.choice(["on", "next to", "holding"]), objs[j + 1][0]) for j in range(len(objs) - 1)]
        rels.append((objs[0][0], "near", 999999))  # a relation to an unknown object: a record problem
        items.append(json.dumps(vg_image(i, objs, rels)))
    items[7] = '{"image_id": 8, "objects": [{"object_id": 1, "names": ["dog"'  # malformed
    items[15] = "17"  # not an object
    items[21] = json.dumps({"objects": []})  # no image_id
    items[26] = items[26].replace('"image_id": 27', '"image_id": 270')  # missing from image_data.json
    text = "[" + ", ".join(items[:30]) + " " + ", ".join(items[30:])  # a missing comma; truncated end
    folder.mkdir(parents=True)
    (folder / "scene_graphs.json").write_text(text)
    (folder / "image_data.json").write_text(json.dumps(
        [{"image_id": i, "url": f"https://x/VG_100K/{i}.jpg"} for i in range(1, n + 1)]))
    return folder


def _outputs(out: Path) -> dict[str, bytes]:
    files = {f"table/{p.name}": p.read_bytes() for p in sorted((out / TABLE_DIR).iterdir())}
    files["kg.json"] = (out / "kg.json").read_bytes()
    rep = json.loads((out / REPORT_FILE).read_text())
    rep.pop("seconds")
    rep.pop("options")
    files["report"] = json.dumps(rep, sort_keys=True).encode()
    return files


def _build(vg: Path, out: Path, workers: int) -> dict[str, bytes]:
    build(BuildConfig(source="vg", vg_dir=vg, out=out, wordnet=False, workers=workers, progress=False))
    return _outputs(out)


def test_parallel_pass1_bytes_equal_sequential(tmp_path: Path):
    vg = _vg_with_damage(tmp_path / "vg")
    one = _build(vg, tmp_path / "w1", 1)
    rep = json.loads(one["report"])
    assert rep["counts"]["images"] == 36
    assert {"malformed JSON item: Expecting ',' delimiter", "record is not a JSON object",
            "record without image_id", "image id missing from image_data.json",
            "file ends before the closing ']' (truncated)"} <= set(rep["skips_by_reason"])
    assert any(s["where"] == "scene_graphs.json item 15" for s in rep["skips"])
    assert rep["record_problems_by_reason"]["relation to unknown object id"] == 36
    for workers in (2, 3):
        _skips, plan, _ = parallel_plan(BuildConfig(source="vg", vg_dir=vg, out=tmp_path, workers=workers))
        assert len(plan.starts) == 4 * workers  # ranges of a few records: bad ones near their ends too
        assert _build(vg, tmp_path / f"w{workers}", workers) == one
    assert parallel_plan(BuildConfig(source="vg", vg_dir=vg, out=tmp_path, workers=0)) is None  # small: sequential
    assert not list((tmp_path / "w3").glob(".graphs*"))  # no spill left behind


def test_wordnet_loads_beside_the_pass1_workers(tmp_path: Path, wordnet_ready, monkeypatch):
    """WordNet is read in a thread while the pass-1 workers run: same bytes as loading it first; a
    load that fails there still stops the build with the install hint."""
    from kgaug import wordnet as wordnet_module

    vg = _vg_with_damage(tmp_path / "vg")

    def with_wordnet(out: Path, workers: int) -> dict[str, bytes]:
        build(BuildConfig(source="vg", vg_dir=vg, out=out, wordnet=True, workers=workers, progress=False))
        return _outputs(out)

    one = with_wordnet(tmp_path / "w1", 1)
    assert with_wordnet(tmp_path / "w2", 2) == one
    monkeypatch.setattr(wordnet_module, "_READERS", {})

    def broken(*_a, **_k):
        raise OSError("damaged WordNet file")

    monkeypatch.setattr(wordnet_module, "load_english_reader", broken)
    with pytest.raises(wordnet_module.WordNetMissing, match="nltk.downloader wordnet"):
        build(BuildConfig(source="vg", vg_dir=vg, out=tmp_path / "w3", wordnet=True, workers=2, progress=False))


def test_parallel_pass1_prunes_co_occurrences_where_sequential_does(tmp_path: Path, monkeypatch):
    vg = _vg_with_damage(tmp_path / "vg")
    monkeypatch.setattr(kg_counts, "COOC_CAP", 25)
    one = _build(vg, tmp_path / "w1", 1)
    assert json.loads(one["report"])["kg"]["co_occurrence_prunes"] > 1
    assert _build(vg, tmp_path / "w2", 2) == one


def test_parallel_pass1_with_images_and_sensitive_tags(tmp_path: Path):
    from PIL import Image

    from .helpers import tiny_world, write_vg

    images = [dict(im, image_id=c * 10 + im["image_id"]) for c in range(4) for im in tiny_world()]
    folder = write_vg(tmp_path / "world", images)
    (folder / "images").mkdir()
    for im in images[::3] + images[1::3]:  # a third have no image file
        Image.new("RGB", (4, 4)).save(folder / "images" / f"{im['image_id']}.jpg")
    (folder / "sensitive.json").write_text(json.dumps({"1": {"gender": "female"}, "12": {"group": "a"}}))
    outs = []
    for workers in (1, 2):
        cfg = BuildConfig(source="synthetic", vg_dir=folder, out=tmp_path / f"w{workers}", wordnet=False,
                          workers=workers, progress=False)
        assert (parallel_plan(cfg) is None) == (workers == 1)
        build(cfg)
        outs.append(_outputs(tmp_path / f"w{workers}"))
    assert outs[0] == outs[1]
    assert json.loads(outs[0]["report"])["counts"]["images"] == 22


def test_beside_runs_start_up_work_once_and_reraises_its_error():
    from kgaug.engine.local import Beside

    ran = []
    here = Beside(lambda: ran.append("here"))
    here.join()  # never started (sequential pass 1): the work runs now
    assert ran == ["here"]

    def broken():
        raise OSError("bad data file")

    there = Beside(lambda: ran.append("there"), broken)
    there.start()
    there.settle()  # waits, keeps the error for join (as after a failed pass 1)
    assert there.thread is None and ran == ["here", "there"]
    with pytest.raises(OSError, match="bad data file"):
        there.join()
    assert ran == ["here", "there"]  # started work is not run a second time
