"""Helpers for the kgaug tests: small Visual Genome-format inputs, the CLI runner, independent fact checks."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kgaug.cli import app
from kgaug.kg import KG
from kgaug.scene_graph import GraphBuilder, SceneGraph
from kgaug.wordnet import WordNet


def vg_image(image_id: int, objects: list[tuple[int, list[str], list[str]]],
             rels: list[tuple[int, str, int]]) -> dict:
    return {
        "image_id": image_id,
        "objects": [{"object_id": oid, "names": names, "synsets": [], "attributes": atts,
                     "x": 1, "y": 2, "w": 3, "h": 4} for oid, names, atts in objects],
        "relationships": [{"subject_id": s, "predicate": p, "object_id": o, "relationship_id": i, "synsets": []}
                          for i, (s, p, o) in enumerate(rels)],
    }


def tiny_world() -> list[dict]:
    """Eight images whose graphs allow every negative type (the last two let reverse_rel swap roles the
    corpus shows both ways: a dog chasing a cat, a cat chasing a dog)."""
    return [
        vg_image(1, [(10, ["dog"], ["black", "small"]), (11, ["couch"], ["white"]), (12, ["cat"], ["brown"])],
                 [(10, "ON", 11), (12, "next to", 11)]),
        vg_image(2, [(20, ["man"], ["tall"]), (21, ["horse"], ["brown"]), (22, ["hat"], ["red"])],
                 [(20, "riding", 21), (20, "wears", 22)]),
        vg_image(3, [(30, ["cat"], ["white"]), (31, ["table"], ["wooden"]), (32, ["cup"], ["blue"])],
                 [(30, "under", 31), (32, "on top of", 31)]),
        vg_image(4, [(40, ["woman"], ["young"]), (41, ["umbrella"], ["red"]), (42, ["car"], ["black"])],
                 [(40, "holding", 41), (40, "in front of", 42)]),
        vg_image(5, [(50, ["dog"], ["brown"]), (51, ["frisbee"], ["yellow"]), (52, ["grass"], ["green"])],
                 [(50, "catching", 51), (51, "above", 52)]),
        vg_image(6, [(60, ["boy"], ["small"]), (61, ["bike"], ["red"]), (62, ["street"], ["wet"])],
                 [(60, "riding", 61), (61, "on", 62)]),
        vg_image(7, [(70, ["dog"], ["white"]), (71, ["cat"], ["black"]), (72, ["fence"], ["wooden"])],
                 [(70, "chasing", 71), (71, "near", 72)]),
        vg_image(8, [(80, ["cat"], ["grey"]), (81, ["dog"], ["small"]), (82, ["yard"], ["green"])],
                 [(80, "chasing", 81), (81, "in", 82)]),
    ]


def write_vg(folder: Path, images: list[dict], image_data: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scene_graphs.json").write_text(json.dumps(images))
    if image_data:
        (folder / "image_data.json").write_text(json.dumps(
            [{"image_id": im["image_id"], "url": f"https://x/VG_100K/{im['image_id']}.jpg", "width": 8,
              "height": 8} for im in images]))
    return folder


def run_build(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["build", "--no-progress", *args])
    return result.exit_code, result.output + (str(result.exception) if result.exception and
                                              not isinstance(result.exception, SystemExit) else "")


def graph_facts(scene_graph_json: str) -> tuple[set[str], dict[str, set[str]], set[tuple[str, str, str]]]:
    """Objects, attributes per object name, and relation triples, read straight from the row's JSON."""
    g = json.loads(scene_graph_json)
    names = {o["id"]: o["name"] for o in g["objects"]}
    objs = set(names.values())
    atts: dict[str, set[str]] = {}
    for o in g["objects"]:
        atts.setdefault(o["name"], set()).update(o.get("attributes", []))
    rels = {(p, names[s], names[o]) for s, p, o in g["relations"] if s in names and o in names}
    return objs, atts, rels


def small_graph() -> SceneGraph:
    """Dogs on a couch, a cat next to it (and what GraphBuilder drops: empty names, unknown ids)."""
    b = GraphBuilder()
    b.add_object("1", ["Dogs"], [], ["black", "", "small"])
    b.add_object("2", ["couch"], [], ["white"])
    b.add_object("3", ["cat"], [], ["brown"])
    assert b.add_object("4", ["", "  "]) is None
    b.add_relation("1", " ON ", "2")
    b.add_relation("3", "next to", "2")
    assert not b.add_relation("1", "on", "99") and not b.add_relation("1", "", "2")
    assert "relation to unknown object id" in b.problems and "object with empty names" in b.problems
    return b.graph


def kg_for_negatives(g: SceneGraph, image_graph_twice: bool = False) -> KG:
    """A KG from `g` plus a few extra objects/relations to draw replacements from."""
    kg = KG(WordNet(enabled=False))
    kg.add_graph(g)
    extra = GraphBuilder()
    extra.add_object("a", ["bird"], [], ["red"])
    extra.add_object("b", ["table"], [], ["wooden"])
    extra.add_object("c", ["dog"], [], ["yellow"])
    extra.add_relation("a", "under", "b")
    # the corpus also has a couch on something and something on a dog: 'a couch on a dog' is then a
    # reversal it finds plausible (reverse_rel keeps only those)
    extra.add_object("d", ["couch"])
    extra.add_object("e", ["rug"], [], ["white"])  # (replace_obj: "dogs on a white rug" for the couch)
    extra.add_object("f", ["cat"])
    extra.add_object("g", ["dog"])
    extra.add_relation("d", "on", "e")
    extra.add_relation("f", "on", "g")
    # and something under a couch: 'dogs under a couch' replaces 'on' by its converse in a place the
    # corpus has (without WordNet, replace_rel asks the corpus whether anything is ever under a couch)
    extra.add_object("j", ["ball"])
    extra.add_relation("j", "under", "d")
    # and a white cat and a brown couch: 'a brown couch and a white cat' swaps objects plausibly
    extra.add_object("h", ["cat"], [], ["white"])
    extra.add_object("i", ["couch"], [], ["brown"])
    kg.add_graph(extra.graph)
    if image_graph_twice:
        kg.add_graph(g)
    kg.finalize()
    return kg
