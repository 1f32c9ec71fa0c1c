"""The issue-19 measurement tools: `benchmarks/blind_negatives.py` (a blind text-only detector of hard
negatives) and `benchmarks/sample_negatives.py` (a stratified, type-blind sample for judges), on small
kgaug-format tables written here."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

ADJS = ["red", "blue", "green", "black", "white", "small", "large", "wooden"]
NOUNS = ["dog", "cat", "table", "chair", "car", "tree", "horse", "cup", "bike", "man"]
RELS = ["on", "near", "under", "behind"]


def _load(name: str):
    """A benchmarks/ script as a module (benchmarks/ is not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def blind():
    return _load("blind_negatives")


@pytest.fixture(scope="module")
def sampler():
    return _load("sample_negatives")


def neg(kind: str, text: str, caption: str, frm: str = "", to: str = "") -> dict:
    return {"type": kind, "text": text, "from": frm, "to": to, "fact": to, "plausibility": 0.5, "caption": caption}


def row(key: str, captions: list[str], negatives: list[dict], image: str | None = None) -> dict:
    graph = {"objects": [{"id": "1", "name": "dog", "attributes": ["red"]}, {"id": "2", "name": "table"}],
             "relations": [["1", "on", "2"]]}
    return {"key": key, "image": image, "source": "synthetic", "captions": captions,
            "pseudo_captions": [{"text": "a dog.", "facts": ["dog"], "style": "attribute"}],
            "hard_negatives": negatives, "scene_graph": json.dumps(graph), "sensitive": [], "license": "CC-BY-4.0"}


def write_table(folder: Path, rows: list[dict]) -> Path:
    """A kgaug build output folder (table/part-00000.parquet + report.json) holding `rows`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kgaug.table import PART_PATTERN, REPORT_FILE, TABLE_DIR, TABLE_SCHEMA

    (folder / TABLE_DIR).mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=TABLE_SCHEMA), folder / TABLE_DIR / PART_PATTERN.format(index=0))
    (folder / REPORT_FILE).write_text(json.dumps({"counts": {"rows": len(rows)}}))
    return folder


def sentence(rng: random.Random) -> tuple[str, str, str, str, str]:
    n1, n2 = rng.sample(NOUNS, 2)
    return rng.choice(ADJS), n1, rng.choice(RELS), rng.choice(ADJS), n2


def say(a1: str, n1: str, r: str, a2: str, n2: str) -> str:
    return f"a {a1} {n1} {r} a {a2} {n2}."


def giveaway_rows(n_images: int = 150, seed: int = 1) -> list[dict]:
    """Negatives that put a word no positive ever uses in place of the second object."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_images):
        caps = [say(*sentence(rng)) for _ in range(2)]
        negs = []
        for c in caps:
            words = c[:-1].split(" ")
            negs.append(neg("replace_obj", " ".join([*words[:-1], "zeppelin"]) + ".", c, words[-1], "zeppelin"))
        rows.append(row(f"img_{i:04d}", caps, negs))
    return rows


def exchangeable_rows(n_images: int = 200, seed: int = 2) -> list[dict]:
    """Negatives that swap the two objects of a positive: (positive, negative) has the same distribution
    as (negative, positive), so no text-only detector can beat chance."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_images):
        parts = [sentence(rng) for _ in range(2)]
        caps = [say(*p) for p in parts]
        negs = [neg("swap_obj", say(a1, n2, r, a2, n1), c, n1, n2) for (a1, n1, r, a2, n2), c in zip(parts, caps)]
        rows.append(row(f"img_{i:04d}", caps, negs))
    return rows


# --- the blind detector --------------------------------------------------------------------------

def test_features_are_deterministic_hashes(blind):
    assert blind.ngrams("A dog, on a couch") == ["a", "dog", "on", "a", "couch", "<s> a", "a dog", "dog on",
                                                 "on a", "a couch", "couch </s>"]
    assert blind.bucket("a dog", 4096) == zlib.crc32(b"a dog") % 4096
    x = blind.pair_features(["a dog"], ["a cat"], 64)
    assert x.shape == (1, 128)
    np.testing.assert_array_equal(x[0, :64], blind.hashed("a dog", 64) - blind.hashed("a cat", 64))
    np.testing.assert_array_equal(x[0, 64:], blind.hashed("a dog", 64) * blind.hashed("a cat", 64))


def test_folds_are_grouped_by_image(blind):
    groups = [f"img{i // 3}" for i in range(60)]
    fold = blind.group_folds(groups, 5, np.random.default_rng(0))
    for g in set(groups):
        assert len({int(f) for f, h in zip(fold, groups) if h == g}) == 1
    assert sorted(Counter(fold.tolist()).values()) == [12] * 5
    np.testing.assert_array_equal(fold, blind.group_folds(groups, 5, np.random.default_rng(0)))


def test_lm_prefers_seen_text(blind):
    lm = blind.BigramLM.fit(["a red dog on a table.", "a red cat on a chair."])
    assert lm.per_token("a red dog on a chair.") > lm.per_token("a zeppelin dog on a chair.")
    assert blind.lm_hit(lm, "a red dog.", "a zeppelin dog.") == 1.0
    assert blind.lm_hit(lm, "a red dog.", "a red dog.") == 0.5


def _evaluate(blind, folder: Path) -> dict:
    from kgaug.table import read_rows

    pairs, info = blind.pairs_from_rows(read_rows(folder))
    return blind.summarise(pairs, blind.evaluate(pairs, seed=0, dim=256), info)


def test_detector_spots_a_giveaway_word(blind, tmp_path: Path):
    per_type = _evaluate(blind, write_table(tmp_path / "give", giveaway_rows()))
    r = per_type["replace_obj"]
    assert r["pairs"] == 300 and r["images"] == 150 and r["coverage"] == 1.0
    assert r["detector_accuracy"] >= 0.95, r
    assert r["lm_score"] >= 0.95, r
    assert per_type["swap_obj"]["pairs"] == 0 and per_type["swap_obj"]["detector_accuracy"] is None


def test_detector_is_blind_to_exchangeable_negatives(blind, tmp_path: Path):
    per_type = _evaluate(blind, write_table(tmp_path / "swap", exchangeable_rows()))
    r = per_type["swap_obj"]
    assert r["pairs"] == 400
    assert 0.4 <= r["detector_accuracy"] <= 0.6, r
    assert 0.4 <= r["lm_score"] <= 0.6, r


def test_detector_cli_is_deterministic(blind, tmp_path: Path, capsys):
    table = write_table(tmp_path / "give", giveaway_rows(60))
    a = blind.main([str(table), "--dim", "512", "--json", str(tmp_path / "a.json"), "--name", "t"])
    b = blind.main([str(table), "--dim", "512", "--json", str(tmp_path / "b.json"), "--name", "t"])
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert a["per_type"] == b["per_type"] and a["per_type"]["overall"]["pairs"] == 120
    assert any("zeppelin" in g for g, _ in a["giveaway_ngrams"][:3])
    assert "| t: type |" in capsys.readouterr().out


# --- the judges' sample --------------------------------------------------------------------------

TYPE_COUNTS = {"replace_obj": 11, "replace_att": 7, "swap_att": 3, "add_obj": 2}


def typed_rows() -> list[dict]:
    """23 negatives over 8 images with the counts above, interleaved across images."""
    pool = [t for t, c in TYPE_COUNTS.items() for _ in range(c)]
    random.Random(5).shuffle(pool)
    rows = [row(f"img_{i}", [f"a red dog number {i}."], [], image=f"/data/imgs/{i}.jpg") for i in range(8)]
    for j, t in enumerate(pool):
        rows[j % 8]["hard_negatives"].append(neg(t, f"negative {j} of the table", f"a red dog number {j % 8}.",
                                                 "red", f"w{j}"))
    return rows


def test_largest_remainder_by_hand(sampler):
    # 10 of 23: exact 4.78, 3.04, 1.30, 0.87 -> floors 4, 3, 1, 0; the 2 left go to .87 and .78
    assert sampler.largest_remainder(TYPE_COUNTS, 10) == {"replace_obj": 5, "replace_att": 3, "swap_att": 1,
                                                          "add_obj": 1}
    assert sampler.largest_remainder({"a": 1, "b": 1, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}
    assert sampler.largest_remainder(TYPE_COUNTS, 100) == TYPE_COUNTS
    assert sum(sampler.largest_remainder({"a": 313, "b": 7, "c": 28, "d": 1148}, 100).values()) == 100


def test_sample_is_stratified_deterministic_and_blind(sampler, tmp_path: Path):
    table = write_table(tmp_path / "tab", typed_rows())
    out = tmp_path / "q" / "tab-before.jsonl"
    sampler.main([str(table), "--out", str(out), "--n", "10", "--seed", "3", "--image-base", "/data"])
    items = [json.loads(line) for line in out.read_text().splitlines()]
    keys = [json.loads(line) for line in (tmp_path / "q" / "tab-before.key.jsonl").read_text().splitlines()]

    assert [i["id"] for i in items] == [k["id"] for k in keys] == [f"tab-before-{i:03d}" for i in range(10)]
    assert Counter(k["type"] for k in keys) == {"replace_obj": 5, "replace_att": 3, "swap_att": 1, "add_obj": 1}
    assert len({(k["row"], k["index"]) for k in keys}) == 10
    rows = typed_rows()
    for item, k in zip(items, keys):
        source = rows[k["row"]]["hard_negatives"][k["index"]]
        assert item["negative"] == source["text"] and k["type"] == source["type"]
        assert k["caption"] == source["caption"] and k["to"] == source["to"] and item["key"] == k["key"]
        assert item["image"] == f"imgs/{k['row']}.jpg"
        assert item["scene_graph"] == {"objects": ["red dog", "table"], "relations": ["dog on table"]}
        # blind: nothing a judge sees names the type or the caption the negative was edited from
        assert set(item) == {"id", "key", "image", "captions", "scene_graph", "negative"}
        assert not any(t in json.dumps(item) for t in TYPE_COUNTS)
        assert source["caption"] in item["captions"]  # (the image's own caption is shown, as for COCO)

    first = out.read_bytes(), (tmp_path / "q" / "tab-before.key.jsonl").read_bytes()
    sampler.main([str(table), "--out", str(out), "--n", "10", "--seed", "3", "--image-base", "/data"])
    assert (out.read_bytes(), (tmp_path / "q" / "tab-before.key.jsonl").read_bytes()) == first
    sampler.main([str(table), "--out", str(out), "--n", "10", "--seed", "4", "--image-base", "/data"])
    assert out.read_bytes() != first[0]


def test_sample_order_does_not_group_types(sampler):
    types = ["a"] * 50 + ["b"] * 50
    picks = sampler.stratified_draw(types, 40, seed=0)
    drawn = [types[i] for i in picks]
    assert Counter(drawn) == {"a": 20, "b": 20}
    assert drawn != sorted(drawn) and picks == sampler.stratified_draw(types, 40, seed=0)


def _jsonl(path: Path, recs: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_judged_precision_pools_judges_and_checks_their_files(tmp_path: Path):
    jp = _load("judged_precision")
    ids = [f"s-{i:03d}" for i in range(10)]
    _jsonl(tmp_path / "s.key.jsonl", [{"id": i, "type": "replace_rel" if n < 4 else "add_obj"}
                                      for n, i in enumerate(ids)])
    a = ["good"] * 6 + ["bad"] * 4
    b = ["good"] * 5 + ["borderline"] + ["bad"] * 4
    _jsonl(tmp_path / "s.labels.a.jsonl", [{"id": i, "label": lab, "false_for_image": "no" if lab == "bad" else "yes"}
                                           for i, lab in zip(ids, a)])
    _jsonl(tmp_path / "s.labels.b.jsonl", [{"id": i, "label": lab, "false_for_image": "yes"} for i, lab in zip(ids, b)])
    res = jp.summarise(*jp.load(tmp_path / "s"))
    assert res["judges"] == ["a", "b"] and res["items"] == 10
    assert res["per_judge"]["a"]["good"] == pytest.approx(0.6) and res["per_judge"]["a"]["true_for_image"] == 0.4
    assert res["pooled"]["good"] == pytest.approx(0.55) and res["good_by_all_judges"] == pytest.approx(0.5)
    assert res["by_type"]["replace_rel"] == {"n": 4, "good": 1.0}
    assert 0.6 < res["kappa"]["a-b"] < 1.0  # one disagreement in ten
    assert jp.cohen_kappa(a, a) == 1.0
    # a judge who skipped an item is an error naming the file, not a silently smaller sample
    _jsonl(tmp_path / "s.labels.c.jsonl", [{"id": i, "label": "good"} for i in ids[:-1]])
    with pytest.raises(SystemExit, match=r"s\.labels\.c\.jsonl.*missing ids \['s-009'\]"):
        jp.load(tmp_path / "s")


# --- swap coverage (goal 4) ----------------------------------------------------------------------

def _np(name: str, atts: tuple[str, ...] = (), plural: bool = False):
    from kgaug.captions import NP

    return NP(name, plural, (0, 0), (0, 0), [(a, (0, 0)) for a in atts])


def _cap(text: str, *nps):
    from kgaug.captions import Caption

    return Caption(text, list(nps), [])


SWAP_TEXTS = {
    "c1": "a red dog and a blue cat.", "c2": "a black dog near a table.", "c3": "two dogs and a green car.",
    "c4": "a dog and a cat.", "c5": "a red dog and a red dog.", "c6": "unparseable.",
}


def swap_table() -> tuple[list[dict], dict]:
    """Three images; the parses are given by hand, so the counts are known:
    c1 dog[red] cat[blue]: both types eligible (in img_a with a swap_att and a swap_obj from it; again in
    img_c without swaps); c2 dog[black] table: swap_obj only; c3 dogs(pl)[two] car[green]: swap_att only
    (number differs; "two" is a count, so not categorised); c4 no attributes, c5 one name twice: neither;
    c6 does not parse. img_b also has a swap_att from a pseudo-caption and a swap_obj from c4."""
    t = SWAP_TEXTS
    parses = {t["c1"]: _cap(t["c1"], _np("dog", ("red",)), _np("cat", ("blue",))),
              t["c2"]: _cap(t["c2"], _np("dog", ("black",)), _np("table")),
              t["c3"]: _cap(t["c3"], _np("dog", ("two",), plural=True), _np("car", ("green",))),
              t["c4"]: _cap(t["c4"], _np("dog"), _np("cat")),
              t["c5"]: _cap(t["c5"], _np("dog", ("red",)), _np("dog", ("red",))),
              t["c6"]: None}
    rows = [row("img_a", [t["c1"], t["c2"]], [neg("swap_att", "a blue dog and a red cat.", t["c1"], "red", "blue"),
                                              neg("swap_obj", "a red cat and a blue dog.", t["c1"], "dog", "cat"),
                                              neg("replace_obj", "a black horse near a table.", t["c2"])]),
            row("img_b", [t["c3"], t["c4"], t["c5"], t["c6"]],
                [neg("swap_att", "a black dog and a white cat.", "a white dog and a black cat.", "white", "black"),
                 neg("swap_obj", "a cat and a dog.", t["c4"], "dog", "cat")]),
            row("img_c", [t["c1"]], [])]
    return rows, parses


def test_swap_coverage_counts_a_hand_made_table(tmp_path: Path):
    from kgaug.table import read_rows

    sc = _load("swap_coverage")
    rows, parses = swap_table()
    res = sc.count(read_rows(write_table(tmp_path / "swap", rows)), parses, examples=10, seed=0)
    assert (res["rows"], res["captions"], res["unparsed"]) == (3, 7, 1)
    att, obj = res["swap_att"], res["swap_obj"]
    assert (att["eligible"], att["with_swap"], att["share"]) == (3, 1, 0.3333)
    assert (att["categorised"], att["categorised_with_swap"]) == (2, 1)
    assert att["miss_other_caption"] == 1  # c3: img_b has a swap_att, from a pseudo-caption
    assert (att["images_eligible"], att["images_with_swap"]) == (3, 2)
    assert (att["swaps"], att["swaps_not_eligible"]) == (1, 0)  # the pseudo-caption's is not a human caption's
    assert att["meets_goal"] is False
    assert [(e["key"], e["caption"]) for e in att["examples"]] == [("img_b", SWAP_TEXTS["c3"]),
                                                                  ("img_c", SWAP_TEXTS["c1"])]
    assert att["examples"][0]["parse"] == "dog(pl)[two] car[green]"
    assert (obj["eligible"], obj["with_swap"], obj["share"], obj["miss_other_caption"]) == (3, 1, 0.3333, 1)
    assert (obj["images_eligible"], obj["images_with_swap"]) == (2, 1)
    assert (obj["swaps"], obj["swaps_not_eligible"]) == (2, 1)  # c4's swap has no attribute to move
    assert [(e["key"], e["caption"]) for e in obj["examples"]] == [("img_a", SWAP_TEXTS["c2"]),
                                                                  ("img_c", SWAP_TEXTS["c1"])]
    # the examples are a seeded sample of the misses, in table order
    one = sc.count(rows, parses, examples=1, seed=3)
    assert one["swap_att"]["examples"] == sc.count(rows, parses, examples=1, seed=3)["swap_att"]["examples"]
    assert len(one["swap_att"]["examples"]) == 1 and one["swap_att"]["eligible"] == 3
    assert sc.count([], {})["swap_att"]["share"] is None


def test_swap_coverage_cli_parses_with_kgaug(spacy_model: str, tmp_path: Path, capsys):
    sc = _load("swap_coverage")
    caps = ["A red dog next to a blue cat.", "A dog sleeps on a bed."]
    table = write_table(tmp_path / "cli", [row("img_0", caps, [neg("swap_att", "A blue dog next to a red cat.",
                                                                   caps[0], "red", "blue")])])
    res = sc.main([str(table), "--spacy-model", spacy_model, "--json", str(tmp_path / "s.json"), "--name", "t"])
    assert json.loads((tmp_path / "s.json").read_text())["swap_att"] == res["swap_att"]
    assert (res["swap_att"]["eligible"], res["swap_att"]["with_swap"], res["swap_att"]["share"]) == (1, 1, 1.0)
    assert (res["swap_obj"]["eligible"], res["swap_obj"]["with_swap"]) == (1, 0)
    assert res["swap_obj"]["examples"][0]["parse"] == "dog[red] cat[blue]"
    assert "| swap_att | 1 | 1 | 100.0 % |" in capsys.readouterr().out


def test_pseudo_caption_draw_is_stratified_blind_and_keyed(sampler, tmp_path: Path):
    rows = []
    for i in range(30):
        r = row(f"img_{i:03d}", ["a red dog on a table."], [])
        r["pseudo_captions"] = [{"text": f"a red dog {i}.", "facts": ["red(dog)"], "style": "attribute"},
                                {"text": f"a dog on a table {i}.", "facts": ["on(dog,table)"], "style": "relation"},
                                {"text": f"a red dog on a table {i}.", "facts": ["red(dog)", "on(dog,table)"],
                                 "style": "relation"}]
        rows.append(r)
    out = tmp_path / "p.jsonl"
    sampler.main([str(write_table(tmp_path / "t", rows)), "--out", str(out), "--n", "9", "--pseudo"])
    items = [json.loads(x) for x in out.read_text().splitlines()]
    keys = [json.loads(x) for x in (tmp_path / "p.key.jsonl").read_text().splitlines()]
    assert Counter(k["type"] for k in keys) == {"relation": 6, "attribute": 3}  # 2 : 1 as in the table
    assert all("pseudo_caption" in it and "type" not in it and "facts" not in it for it in items)
    for it, k in zip(items, keys):
        p = rows[k["row"]]["pseudo_captions"][k["index"]]
        assert it["id"] == k["id"] and it["pseudo_caption"] == p["text"] and k["facts"] == p["facts"]
