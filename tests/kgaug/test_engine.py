"""kgaug.engine: the spill between the passes, and what crosses worker processes."""

from __future__ import annotations

import random
from pathlib import Path

from kgaug.captions import caption_to_dict, pseudo_captions
from kgaug.evidence import Evidence
from kgaug.negatives import Generator
from kgaug.scene_graph import GraphBuilder, SceneGraph
from tests.kgaug.helpers import kg_for_negatives, small_graph


def test_spill_records_round_trip_marshal_or_pickle(tmp_path: Path):
    import io

    from kgaug.engine.spill import SpillRecord, read_spill, spill_blobs, write_spill
    from kgaug.scene_graph import packed_json

    g = GraphBuilder()
    g.add_object("1", ["dogs"], ["dog.n.01"], ["black", "far away"], (1, 2, 3, 4))
    g.add_object("2", ["couch", "sofa"])
    g.add_relation("1", "on", "2")
    plain = SpillRecord("vg_1", "vg", None, ["a dog"], g.graph.to_tuples(), [], ["dog"], {"gender": "male"}, None)
    odd = plain._replace(image=Path("im.jpg"))  # not a marshal type: pickled
    f = io.BytesIO()
    for rec in (plain, odd, plain):
        write_spill(f, rec)
    (tmp_path / "spill").write_bytes(f.getvalue())
    assert [read_spill(b) for b in spill_blobs(tmp_path / "spill")] == [plain, odd, plain]
    assert packed_json(*plain.graph) == SceneGraph.from_tuples(plain.graph).to_json() == g.graph.to_json()


def test_objects_that_cross_processes_pickle_round_trip():
    """Pass-1 workers send parsed captions to the parent and pass 2 may hand negatives around: a
    failed unpickle in a Pool's result thread hangs the build instead of failing it."""
    import pickle

    g = small_graph()
    kg = kg_for_negatives(g)
    caps = pseudo_captions(g, 6, random.Random(3))
    negs = Generator(kg, per_type=1).for_image(caps, Evidence(g, kg), random.Random(5))
    assert caps and negs
    for c in caps:
        back = pickle.loads(pickle.dumps(c))
        assert caption_to_dict(back) == caption_to_dict(c) and back.facts() == c.facts()
    for n in negs:
        back = pickle.loads(pickle.dumps(n))
        assert (back.row(), back.new_facts, back.check_word) == (n.row(), n.new_facts, n.check_word)
    assert pickle.loads(pickle.dumps(g)) == g
    assert pickle.loads(pickle.dumps(g.objects[0])) == g.objects[0]
    assert pickle.loads(pickle.dumps(g.relations[0])) == g.relations[0]
