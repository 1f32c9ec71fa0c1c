"""kgaug.scene_graph: facts of a graph and its JSON form."""

from __future__ import annotations

import json

from kgaug.scene_graph import SceneGraph, parse_fact
from tests.kgaug.helpers import small_graph


def test_scene_graph_facts_and_json_roundtrip():
    g = small_graph()
    assert g.facts() == {"dog", "couch", "cat", "black(dog)", "small(dog)", "white(couch)", "brown(cat)",
                         "on(dog,couch)", "next to(cat,couch)"}
    assert g.objects[0].plural
    assert SceneGraph.from_json(g.to_json()).facts() == g.facts()
    assert parse_fact("next to(cat,couch)") == ("next to", ("cat", "couch")) and parse_fact("dog") == ("", ("dog",))


def test_scene_graph_json_is_what_json_dumps_writes():
    """The table's `scene_graph` column is written with orjson for speed: it must stay the bytes the
    stdlib writes (readers may compare or hash it), for every code point and for a lone surrogate."""
    from kgaug.scene_graph import compact_json

    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    for value in ({"objects": [{"id": "1", "name": every, "box": [0, 1, 2, 3]}], "relations": [["1", "on", "2"]]},
                  {"objects": [{"id": "2", "name": "bad \ud800 escape"}], "relations": []},
                  {"n": 2 ** 70, "t": True, "z": None}):
        assert compact_json(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
