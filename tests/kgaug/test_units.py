"""Pure pieces: JSON streaming, lexicon inflection, scene-graph facts, captions and negative edits."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from kgaug import lexicon
from kgaug.captions import caption_from_dict, caption_to_dict, pseudo_captions
from kgaug.evidence import Evidence
from kgaug.jsonstream import Malformed, NotAnArray, iter_array
from kgaug.kg import KG
from kgaug.negatives import TYPES, Generator, apply_edits, derive_fact
from kgaug.scene_graph import GraphBuilder, SceneGraph, parse_fact
from kgaug.wordnet import WordNet


def test_iter_array_streams_across_chunks_and_resyncs(tmp_path: Path):
    p = tmp_path / "a.json"
    items = [{"image_id": i, "objects": [{"names": ["x" * 40]}], "n": 123456789} for i in range(60)]
    p.write_text(json.dumps(items))
    assert list(iter_array(p, chunk=7)) == items
    p.write_text('[{"image_id": 1, "o": [{"a": 1}]}, {"image_id": 2, "o": [{"a": 1}, BAD]}, {"image_id": 3},'
                 ' {"image_id": 4} {"image_id": 5}, {"image_id": 6')
    out = list(iter_array(p, lambda x: isinstance(x, dict) and "image_id" in x, chunk=5))
    ids = [x["image_id"] for x in out if isinstance(x, dict)]
    bad = [x for x in out if isinstance(x, Malformed)]
    assert ids == [1, 3, 4, 5]
    assert len(bad) == 3 and "truncated" not in bad[0].reason
    p.write_text('{"not": "an array"}')
    with pytest.raises(NotAnArray):
        list(iter_array(p))


def test_lexicon_inflection():
    assert lexicon.article("apple") == "an" and lexicon.article("unicorn") == "a" and lexicon.article("hour") == "an"
    assert lexicon.fix_articles("A orange cat and a umbrella near an dog") == "An orange cat and an umbrella near a dog"
    assert lexicon.singular("benches") == ("bench", True) and lexicon.singular("men") == ("man", True)
    assert lexicon.singular("glass") == ("glass", False) and lexicon.singular("pants") == ("pants", True)
    assert lexicon.plural("bench") == "benches" and lexicon.plural("puppy") == "puppies"
    assert lexicon.plural("woman") == "women"
    assert lexicon.determiner("paperwork", False, "paperwork") == "" and lexicon.determiner("desk", False, "desk") == "a"
    assert lexicon.predicate("has on") == "wearing"
    assert lexicon.predicate("  ON ") == "on" and lexicon.predicate("is wearing a") == "wearing"
    assert lexicon.predicate("wears") == "wearing" and lexicon.predicate("and") == ""
    assert lexicon.gerund("ride") == "riding" and lexicon.gerund("sit") == "sitting"
    assert lexicon.sensitive_tags(["A woman and her dog"]) == {"gender": "female"}
    assert lexicon.sensitive_tags(["a man and a woman"]) == {"gender": "mixed"}


def _graph() -> SceneGraph:
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


def test_scene_graph_facts_and_json_roundtrip():
    g = _graph()
    assert g.facts() == {"dog", "couch", "cat", "black(dog)", "small(dog)", "white(couch)", "brown(cat)",
                         "on(dog,couch)", "next to(cat,couch)"}
    assert g.objects[0].plural
    assert SceneGraph.from_json(g.to_json()).facts() == g.facts()
    assert parse_fact("next to(cat,couch)") == ("next to", ("cat", "couch")) and parse_fact("dog") == ("", ("dog",))


def test_pseudo_captions_are_fluent_and_grounded():
    g = _graph()
    caps = pseudo_captions(g, 3, random.Random(0))
    assert {c.style for c in caps} == {"attribute", "relation", "dense"}
    for c in caps:
        assert set(c.facts()) <= g.facts(), c.text
        assert "a dogs" not in c.text and "a black dogs" not in c.text
        assert caption_from_dict(json.loads(json.dumps(caption_to_dict(c)))).facts() == c.facts()
    rel = next(c for c in caps if c.style == "relation")
    assert " on " in rel.text or " next to " in rel.text


def test_in_and_on_are_one_place_where_the_corpus_says_so():
    """'a dog on the field' is no negative of 'a dog in the field' when the corpus says both of fields;
    'a cup in the table' stays one of 'a cup on the table'."""
    def graph(rels):
        b = GraphBuilder()
        for i, (s, p, o) in enumerate(rels):
            b.add_object(f"s{i}", [s])
            b.add_object(f"o{i}", [o])
            b.add_relation(f"s{i}", p, f"o{i}")
        return b.graph

    kg = KG(WordNet(enabled=False))
    for rels in ([("dog", "in", "field")] * 5 + [("cow", "on", "field")] * 4 + [("cup", "on", "table")] * 30
                 + [("knife", "in", "table")]):
        kg.add_graph(graph([rels]))
    ev = Evidence(graph([("dog", "in", "field"), ("cup", "on", "table")]), kg)
    assert ev.holds("on(dog,field)") and ev.holds("at(dog,field)") is False
    assert not ev.holds("in(cup,table)") and not ev.holds("on(field,dog)")
    assert kg.same_place("on", "in", "field") and not kg.same_place("on", "in", "table")


def test_counts_and_quantities_never_follow_is():
    """'the people are four' is no English: such attributes stay before the noun ('four people')."""
    kg = KG(WordNet(enabled=False))
    texts = set()
    for name, att in (("people", "four"), ("trains", "many"), ("window", "locked")):
        b = GraphBuilder()
        b.add_object("1", [name], [], [att])
        texts |= {c.text for seed in range(20)
                  for c in pseudo_captions(b.graph, 3, random.Random(seed), kg.describable, kg.predicative)}
    assert "four people." in texts and not any(" are four" in t or " are many" in t for t in texts), texts
    assert "the window is locked." in texts  # an ordinary attribute still reads after 'is'
    assert not kg.predicative("four") and not lexicon.predicative("several") and lexicon.predicative("black")


def test_negatives_every_type_and_false():
    g = _graph()
    kg = _kg_for_negatives(g, image_graph_twice=True)
    gen = Generator(kg, per_type=3)
    rng = random.Random(1)
    caps = pseudo_captions(g, 6, rng)
    negs = gen.for_image(caps, Evidence(g, kg), rng)
    assert {n.type for n in negs} == set(TYPES)
    ev = Evidence(g, kg)
    for n in negs:
        assert not ev.holds(derive_fact(n.type, n.fact, n.from_, n.to)), n
        for f in n.new_facts:
            assert not ev.holds(f), n
    assert not any(n.to == "gray" for n in negs)


def test_evidence_synonyms_antonyms_and_symmetry():
    g = _graph()
    kg = KG(WordNet(enabled=False))
    ev = Evidence(g, kg)
    assert ev.holds("under(couch,dog)")  # on(dog,couch) implies it
    assert ev.holds("next to(couch,cat)") and ev.holds("near(couch,cat)")  # symmetric, same group
    assert ev.holds("beside(cat,couch)")  # same predicate group
    assert ev.holds("sitting on(dog,couch)")
    assert not ev.holds("on(couch,dog)")


def test_a_phrasal_verb_states_its_bare_verb():
    """"holding up a sign" is a way of holding it: a negative "holding a sign" would be true."""
    b = GraphBuilder()
    b.add_object("1", ["man"])
    b.add_object("2", ["sign"])
    b.add_relation("1", "holding up", "2")
    ev = Evidence(b.graph, KG(WordNet(enabled=False)))
    assert ev.holds("holding(man,sign)") and ev.holds("holding up(man,sign)")
    assert not ev.holds("holding down(man,sign)") and not ev.holds("throwing(man,sign)")
    assert not ev.holds("holding(sign,man)")


def test_apply_edits_reinflects_articles_and_case():
    assert apply_edits("A black dog.", [((2, 7), "orange")]) == "An orange dog."
    assert apply_edits("A BLUE SHIRT", [((2, 6), "green")]) == "A GREEN SHIRT"
    assert derive_fact("reverse_rel", "on(dog,couch)", "dog", "couch") == "on(couch,dog)"
    assert derive_fact("swap_obj", "black(dog)", "dog", "couch") == "black(couch)"
    assert derive_fact("replace_rel", "on(dog,couch)", "on", "under") == "under(dog,couch)"
    assert derive_fact("replace_obj", "dog", "dog", "cat") == "cat"


def test_wordnet_helpers(wordnet_ready):
    wn = WordNet()
    assert wn.is_a_either_way("dog", "animal") and not wn.is_a_either_way("dog", "cat")
    assert "cat" not in wn.synonyms("dog", "n") and "sofa" in wn.synonyms("couch", "n")
    kg = KG(wn)
    assert kg.same_object("couch", "sofa") and kg.same_object("dog", "animal") and not kg.same_object("dog", "cat")
    assert kg.same_attribute("grey", "gray") and not kg.same_attribute("red", "blue")


def test_attribute_rules_from_the_lexicon():
    kg = KG(WordNet(enabled=False))
    assert "large" not in kg.attribute_candidates("tall") and "short" in kg.attribute_candidates("tall")
    assert "blue" in kg.attribute_candidates("red") and "red" not in kg.attribute_candidates("red")
    b = GraphBuilder()
    b.add_object("1", ["woman"], [], ["young"])
    b.add_object("2", ["chair"], [], ["brown"])
    b.add_object("3", ["park"], [], [])
    b.add_relation("1", "sitting on", "2")
    g = b.graph
    kg.add_graph(g)
    other = GraphBuilder()  # the corpus has seen wooden and small chairs, open parks
    other.add_object("1", ["chair"], [], ["wooden", "small"])
    other.add_object("2", ["park"], [], ["open"])
    kg.add_graph(other.graph)
    kg.finalize()
    gen = Generator(kg, per_type=50)
    from kgaug.captions import NP, Caption

    park = Caption("a skate park.", [NP("park", False, (8, 12), (0, 12), [("skate", (2, 7))])], [], "human")
    caps = pseudo_captions(g, 6, random.Random(0)) + [park]
    negs = gen.for_image(caps, Evidence(g, kg), random.Random(0))
    adds = [n for n in negs if n.type == "add_att"]
    assert adds and not any(n.fact.endswith("(woman)") and n.to in ("white", "black", "brown") for n in adds)
    assert any(n.text == "a brown wooden chair." or n.text.startswith("a small brown chair") for n in adds)
    assert any(n.text.startswith("an open skate park") or n.text.startswith("a red skate park") for n in adds)
    assert not any(n.text.startswith("a skate red park") for n in adds)


def _kg_for_negatives(g: SceneGraph, image_graph_twice: bool = False) -> KG:
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
    extra.add_object("e", ["rug"])
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


def test_negatives_expand_slots_lazily_and_keep_the_most_plausible_of_each_slot():
    g = _graph()
    kg = _kg_for_negatives(g)
    caps = pseudo_captions(g, 6, random.Random(3))
    ev = Evidence(g, kg)
    expanded: list[str] = []

    class Counting(Generator):  # count slot expansions: with one negative per type, few slots are scored
        pass

    for kind in TYPES:
        def counting(self, *slot, _k=kind, _f=getattr(Generator, kind)):
            expanded.append(_k)
            return _f(self, *slot)
        setattr(Counting, kind, counting)
    gen = Counting(kg, per_type=1)
    negs = gen.for_image(caps, ev, random.Random(5))
    total = sum(len(getattr(gen, k + "_slots")(c)) for k in TYPES for c in caps)
    assert len(negs) == len(set(TYPES)) and len(expanded) < total
    fresh = Generator(kg, per_type=1)
    for n in negs:  # no valid edit of the same slot is more plausible than the one kept
        for c in caps:
            for slot in getattr(fresh, n.type + "_slots")(c):
                pool = getattr(fresh, n.type)(*slot)
                if not any(t[1].text == n.caption and t[4] == n.to and t[3] == n.from_ for t in pool):
                    continue
                valid = [t[0] for t in pool if not any(ev.holds(f) for f in t[6])]
                assert n.plausibility >= max(valid), (n, valid)


def test_scene_graph_json_is_what_json_dumps_writes():
    """The table's `scene_graph` column is written with orjson for speed: it must stay the bytes the
    stdlib writes (readers may compare or hash it), for every code point and for a lone surrogate."""
    from kgaug.scene_graph import compact_json

    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    for value in ({"objects": [{"id": "1", "name": every, "box": [0, 1, 2, 3]}], "relations": [["1", "on", "2"]]},
                  {"objects": [{"id": "2", "name": "bad \ud800 escape"}], "relations": []},
                  {"n": 2 ** 70, "t": True, "z": None}):
        assert compact_json(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_kg_describable_is_within_what_captions_can_describe(wordnet_ready):
    """Pass 2 realises pseudo-captions with only `kg.describable` attributes and skips the captions'
    own `describable` test: that is right only while every attribute the KG accepts passes it too."""
    from kgaug import captions

    words = set(lexicon.attribute_category()) | set(lexicon.not_prenominal())
    words |= {"", "red", "far away", "3d", "2", "made of wood", "wooden", "broken", "golden", "shiny",
              "x", "ok!", "über", "١٢", "running", "parked", "sunny", "ceramic", "careless", "here"}
    for kg in (KG(WordNet(enabled=False)), KG(WordNet())):
        for a in sorted(words):
            assert not kg.describable(a) or captions.describable(a), a


def test_rows_as_tuples_make_the_table_the_row_dicts_make(tmp_path: Path):
    """Pass 2 builds its Arrow tables from row tuples: the same table (and parquet bytes) as
    `pa.Table.from_pylist` of the row dicts; a negative's struct is `Negative.row()` in schema order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kgaug.negatives import Negative
    from kgaug.table import HARD_NEGATIVE, TABLE_SCHEMA, table_from_rows

    n = Negative("replace_att", "a blue dog.", "black", "blue", "black(dog)", 1, "a black dog.")
    assert list(n.row()) == HARD_NEGATIVE.names
    rows = [("vg_1", None, "vg", [], [("a dog.", ["dog"], "object")], [tuple(n.row().values())], "{}", [], None),
            ("vg_2", "im.jpg", "vg", ["a cat", "a mat"], [], [], '{"objects":[]}', [("gender", "female")], "cc"),
            ("vg_3", None, "vg", [], [("a b.", [], "dense"), ("c.", ["c", "d"], "x")], [], "", [], "")]
    names = TABLE_SCHEMA.names
    for chunk in (rows, rows[1:2], rows[2:], []):
        dicts = [dict(zip(names, r)) for r in chunk]
        for d in dicts:
            d["pseudo_captions"] = [dict(zip(["text", "facts", "style"], p)) for p in d["pseudo_captions"]]
            d["hard_negatives"] = [dict(zip(HARD_NEGATIVE.names, x)) for x in d["hard_negatives"]]
        want, got = pa.Table.from_pylist(dicts, schema=TABLE_SCHEMA), table_from_rows(chunk)
        assert got.equals(want)
        pq.write_table(want, tmp_path / "want.parquet")
        pq.write_table(got, tmp_path / "got.parquet")
        assert (tmp_path / "got.parquet").read_bytes() == (tmp_path / "want.parquet").read_bytes()


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

    g = _graph()
    kg = _kg_for_negatives(g)
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
