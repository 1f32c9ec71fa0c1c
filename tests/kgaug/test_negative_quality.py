"""What makes a hard negative worth training on, beyond being false: plausible roles, one category,
no skin colour, no vague or implied relation, no word sense nobody means, no VG annotation noise.
Each case here was found by reading the tables built from the real VG and COCO samples."""

from __future__ import annotations

import random

from kgaug import lexicon
from kgaug.captions import pseudo_captions
from kgaug.evidence import Evidence
from kgaug.kg import KG
from kgaug.negatives import Generator, derive_fact
from kgaug.scene_graph import GraphBuilder, SceneGraph
from kgaug.wordnet import WordNet


def _graph(objects: list[tuple[str, list[str]]], rels: list[tuple[int, str, int]]) -> SceneGraph:
    b = GraphBuilder()
    for i, (name, atts) in enumerate(objects):
        b.add_object(str(i), [name], [], atts)
    for s, p, o in rels:
        b.add_relation(str(s), p, str(o))
    return b.graph


def _negatives(g: SceneGraph, corpus: list[SceneGraph], kinds: tuple[str, ...], seeds: int = 12,
               wordnet: WordNet | None = None, complete: bool = True, captioned: bool = True) -> tuple[list, Generator]:
    """Negatives of `g`'s pseudo-captions over `seeds` seeds. `complete`: the graph is all the picture
    shows (as a hand-made graph here is), so additions need no other evidence (`--complete-graphs`).
    `captioned`: the image has captions of the whole picture (a COCO-like source; their words are the
    graph's names), else only its graph (a VG-like source)."""
    kg = KG(wordnet or WordNet(enabled=False))
    for c in corpus:
        kg.add_graph(c)
    kg.finalize()
    gen = Generator(kg, per_type=4, complete_graphs=complete)
    out = []
    for seed in range(seeds):
        rng = random.Random(seed)
        words = {o.name for o in g.objects} if captioned else None
        out += [n for n in gen.for_image(pseudo_captions(g, 4, rng), Evidence(g, kg, words), rng) if n.type in kinds]
    return out, gen


def test_reverse_rel_keeps_only_roles_the_corpus_shows_both_ways():
    wearing = _graph([("man", []), ("sneakers", ["grey"])], [(0, "wearing", 1)])
    chasing = _graph([("dog", ["white"]), ("cat", ["black"])], [(0, "chasing", 1)])
    other_way = _graph([("cat", []), ("dog", [])], [(0, "chasing", 1)])
    negs, gen = _negatives(wearing, [wearing] * 3 + [chasing, other_way], ("reverse_rel",))
    assert not negs  # never 'grey sneakers wearing a man'
    assert gen.rejected["reverse_rel", "implausible: the corpus never has these roles swapped"] > 0
    negs, _ = _negatives(chasing, [wearing, chasing, other_way], ("reverse_rel",))
    assert negs and all("cat chasing a white dog" in n.text or "cat chasing a dog" in n.text for n in negs), \
        [n.text for n in negs]
    # 'has' reads 'with': 'a bag with a man' would say what 'a man with a bag' says
    has = _graph([("man", []), ("bag", ["red"])], [(0, "has", 1)])
    negs, _ = _negatives(has, [has, _graph([("bag", []), ("man", [])], [(0, "has", 1)])], ("reverse_rel",))
    assert not negs


def test_swap_obj_records_every_changed_relation_and_keeps_plausible_roles():
    g = _graph([("cup", ["red"]), ("table", ["wooden"]), ("book", ["blue"]), ("shelf", ["white"])],
               [(0, "on", 1), (2, "on", 3)])
    corpus = [g, _graph([("book", ["red"]), ("cup", ["blue"])], [])]
    negs, gen = _negatives(g, corpus, ("swap_obj",), seeds=30)
    moved = [n for n in negs if {n.from_, n.to} == {"cup", "book"} and n.caption.count(" on ") == 2]
    assert moved, [n.caption for n in negs]
    for n in moved:  # the swap moves each third object's relation the caption states: recorded, checked
        assert {"on(book,table)", "on(cup,shelf)", "blue(cup)", "red(book)"} <= set(n.new_facts), n.new_facts
    # an attribute the corpus never shows on its new object: not 'a wooden cup on a red table'
    assert {"cup", "table"} not in [{n.from_, n.to} for n in negs]
    assert gen.rejected["swap_obj", "implausible: the corpus never shows a moved attribute on its new object"] > 0
    man = _graph([("man", ["tall"]), ("backpack", ["heavy"])], [(0, "carrying", 1)])
    seen = _graph([("man", ["heavy"]), ("backpack", ["tall"])], [])
    negs, gen = _negatives(man, [man, seen], ("swap_obj",))
    assert not any("carrying" in n.text for n in negs)  # never 'a heavy backpack carrying a tall man'
    assert gen.rejected["swap_obj", "implausible: the corpus never has these roles for this verb"] > 0


def test_swap_att_stays_in_one_category_and_puts_no_colour_on_people():
    g = _graph([("pillow", ["blue"]), ("bed", ["wooden", "white"]), ("woman", ["young"]), ("car", ["red"])],
               [(0, "on", 1)])
    negs, gen = _negatives(g, [g], ("swap_att",), seeds=30)
    category = lexicon.attribute_category()
    assert negs
    for n in negs:
        assert category[n.from_] == category[n.to], n.text  # never 'a wooden pillow on a blue bed'
    assert gen.rejected["swap_att", "attributes of two categories (they need not exclude each other)"] > 0
    # two categories, even where the corpus shows each attribute on the other object: no swap. COCO
    # coco_135561's 'a small kitchen with white cabinets' -> 'a white kitchen with small cabinets' and
    # 'a wood drawer and brown cabinets' -> 'a brown drawer and wood cabinets' may well be true.
    for objects in ([("kitchen", ["small"]), ("cabinet", ["white"])], [("drawer", ["wood"]), ("cabinet", ["brown"])]):
        g = _graph(objects, [])
        seen = _graph([(objects[0][0], objects[1][1]), (objects[1][0], objects[0][1])], [])
        negs, _ = _negatives(g, [g, seen], ("swap_att",))
        assert not negs, [n.text for n in negs]
    g = _graph([("kitchen", ["small"]), ("cabinet", ["white", "large"])], [])
    negs, _ = _negatives(g, [g], ("swap_att",))  # one category: a real swap
    assert any("large kitchen" in n.text and "small cabinet" in n.text for n in negs), [n.text for n in negs]
    woman = _graph([("woman", ["young"]), ("shirt", ["white"]), ("man", ["old"]), ("hat", ["black"])], [])
    negs, _ = _negatives(woman, [woman], ("swap_att",), seeds=30)
    assert not any(f"{c} woman" in n.text or f"{c} man" in n.text for n in negs for c in ("white", "black"))
    kg = KG(WordNet(enabled=False))
    assert not kg.editable_category("people", "colour") and not kg.editable_category("hand", "colour")
    assert kg.editable_category("hair", "colour") and kg.editable_category("car", "colour")


def test_replace_rel_verbs_stay_verbs_and_never_become_vague():
    g = _graph([("person", []), ("egg", ["white"]), ("pot", ["black"])], [(0, "cooking", 1), (1, "in", 2)])
    hydrant = _graph([("hydrant", ["red"]), ("sidewalk", [])], [(0, "on", 1)])
    man = _graph([("man", []), ("sign", [])], [(0, "holding", 1)])
    negs, gen = _negatives(g, [g, hydrant, man], ("replace_rel",), seeds=20)
    vague = lexicon.relation_words("vague")
    for n in negs:
        assert n.to not in vague, n.text
        if n.from_ == "cooking":
            assert n.to not in lexicon.relation_words("spatial"), n.text  # not 'a person on an egg'
    negs, gen = _negatives(hydrant, [g, hydrant, man], ("replace_rel",), seeds=20)
    assert not any(n.to == "holding" for n in negs)  # 'a red hydrant holding a sidewalk'


def test_evidence_reads_compound_heads_and_people_as_people():
    g = _graph([("office chair", ["black"]), ("woman", [])], [])
    kg = KG(WordNet(enabled=False))
    ev = Evidence(g, kg)
    assert ev.holds("chair") and ev.holds("black(chair)")
    assert ev.has_person() and kg.is_person("people") and kg.is_person("crowd")
    crowd = _graph([("woman", []), ("field", ["green"])], [(0, "on", 1)])
    corpus = [crowd, _graph([("people", []), ("field", [])], [(0, "on", 1)]),
              _graph([("ball", []), ("field", [])], [(0, "on", 1)])]
    negs, gen = _negatives(crowd, corpus, ("add_obj",))
    assert negs and not any(n.to == "people" for n in negs)  # 'women on a field and people'
    assert gen.rejected["add_obj", "a person where the image already shows people"] > 0
    assert not any(n.to == "field" for n in negs)
    corpus.append(_graph([("wall", []), ("sky", []), ("ball", [])], []))
    negs, gen = _negatives(_graph([("ball", ["red"])], []), corpus, ("add_obj",))
    assert not any(lexicon.is_background(n.to) for n in negs)  # 'a red ball and a wall' is likely true
    assert gen.rejected["add_obj", "a background noun most pictures show"] > 0


def test_vg_names_lose_articles_sentences_and_repeated_words():
    b = GraphBuilder()
    assert b.add_object("1", ["an outlet"])[1] == "outlet"
    assert b.add_object("2", ["monitor is off."]) is None
    assert b.problems == ["object name is a sentence, not a name"]
    obj = b.add_object("3", ["white board"], [], ["white", "dirty"])
    assert obj[1] == "white board" and obj[5] == ["dirty"]


def test_replace_obj_takes_common_senses_only(wordnet_ready):
    wn = WordNet(enabled=True)
    assert wn.sister_sense("man", "woman") and wn.sister_sense("car", "truck")
    assert not wn.sister_sense("woman", "match") and not wn.sister_sense("computer", "press")
    g = _graph([("woman", ["young"]), ("kitchen", [])], [(0, "in", 1)])
    corpus = [g, _graph([("match", []), ("man", []), ("girl", [])], [])]
    negs, _ = _negatives(g, corpus, ("replace_obj",), wordnet=wn)
    assert not any(n.to == "match" for n in negs)
    for n in negs:
        assert derive_fact(n.type, n.fact, n.from_, n.to) == n.to


def test_caption_parse_keeps_containers_and_hyphenated_words(spacy_model: str):
    from kgaug.parse import load_nlp, to_caption

    nlp = load_nlp(spacy_model)
    c = to_caption(nlp("A white plate with a donut on a table."))
    assert {"plate", "donut", "table"} <= {np.name for np in c.nps}
    c = to_caption(nlp("A plate of donuts on a table."))
    assert "plate" not in {np.name for np in c.nps} and "donut" in {np.name for np in c.nps}
    c = to_caption(nlp("A half-eaten sandwich on a well-lit table."))
    atts = {np.name: [a for a, _ in np.atts] for np in c.nps}
    assert atts["sandwich"] == ["half-eaten"] and atts["table"] == ["well-lit"], atts  # not 'eaten', 'lit'

    def rels(text: str) -> set[tuple[str, str, str]]:
        c = to_caption(nlp(text))
        return {(c.nps[r.subj].name, r.pred, c.nps[r.obj].name) for r in c.rels}

    # a participle spaCy hangs on the place describes the person (not 'a kitchen making pizzas')
    assert ("man", "making", "pizza") in rels("A man is in a kitchen making pizzas.")
    assert ("dog", "wearing", "hat") in rels("A man riding a horse next to a dog wearing a hat.")  # an agent keeps it
    held = rels("A man has a frisbee in his hand.")  # what is in the hand is the frisbee
    assert ("frisbee", "in", "hand") in held and ("man", "in", "hand") not in held
    assert ("man", "on", "beach") in rels("A man riding a horse on a beach.")


def test_add_att_goes_after_quantities_and_before_compounds():
    g = _graph([("arrows", ["several"]), ("sign", [])], [(0, "on", 1)])
    corpus = [g, _graph([("arrow", ["white"]), ("sign", ["red"])], [])]
    negs, _ = _negatives(g, corpus, ("add_att",))
    texts = [n.text for n in negs if n.to == "white"]
    assert texts and all("several white arrows" in t for t in texts), texts


def test_replace_rel_puts_in_a_contradicting_preposition_only():
    # The COCO mini table's bad relation edits (issue 19): in/on/with/at swapped for each other read as
    # near-synonyms or nonsense. A preposition is replaced only by its converse, or not at all.
    kitchen = _graph([("kitchen", []), ("refrigerator", ["white"])], [(0, "with", 1)])  # coco_802
    toddler = _graph([("toddler", ["young"]), ("toothbrush", [])], [(0, "with", 1)])  # coco_368212
    laptop = _graph([("laptop", []), ("table", [])], [(0, "on top of", 1)])  # coco_59598
    woman = _graph([("woman", []), ("bed", [])], [(0, "in", 1)])  # coco_536038
    bear = _graph([("bear", ["black"]), ("grass", [])], [(0, "near", 1)])
    corpus = [kitchen, toddler, laptop, woman, bear, _graph([("cat", []), ("table", [])], [(0, "under", 1)])]
    for g in (kitchen, toddler, bear):
        negs, _ = _negatives(g, corpus, ("replace_rel",))
        assert not negs, [n.text for n in negs]  # not 'a kitchen on a white refrigerator'
    negs, _ = _negatives(laptop, corpus, ("replace_rel",))
    assert negs and {n.to for n in negs} <= {"under", "below"}, [n.text for n in negs]
    negs, gen = _negatives(woman, corpus, ("replace_rel",))
    assert not negs  # 'outside' needs a bed the corpus (or WordNet) has things outside of
    assert gen.rejected["replace_rel", "implausible: nothing is in such a place of this object"] > 0


def test_a_converse_preposition_needs_an_object_of_the_right_kind(wordnet_ready):
    wn = WordNet(enabled=True)
    man = _graph([("man", ["young"]), ("jeans", []), ("bathroom", [])], [(0, "in", 1), (0, "in", 2)])
    negs, _ = _negatives(man, [man], ("replace_rel",), wordnet=wn)  # coco_343803, coco_229358
    texts = [n.text for n in negs]
    assert any("outside a bathroom" in t for t in texts), texts
    assert not any("outside jeans" in t for t in texts), texts  # clothing: 'in' is worn, nothing is outside it
    walk = _graph([("woman", []), ("pavement", [])], [(0, "on", 1)])  # coco_105912 'STANDIG ON THE PAVEMENT'
    negs, _ = _negatives(walk, [walk], ("replace_rel",), wordnet=wn)
    assert not negs, [n.text for n in negs]  # not 'a woman under the pavement'
    kg = KG(wn)
    assert kg.grounds("under", "table") and kg.grounds("under", "tree") and kg.grounds("outside", "room")
    assert not kg.grounds("under", "street") and not kg.grounds("outside", "hand") and not kg.grounds("outside", "air")
    assert kg.grounds("behind", "air")  # a preposition the lexicon sets no kinds for takes any object


def test_replace_rel_changes_a_posture_only_for_who_can_take_one():
    man = _graph([("man", []), ("chair", [])], [(0, "sitting on", 1)])  # coco_296222
    bus = _graph([("bus", ["red"]), ("curb", [])], [(0, "sitting at", 1)])
    negs, _ = _negatives(man, [man, bus], ("replace_rel",))
    assert negs and {n.to for n in negs} <= {"standing on", "lying on", "kneeling on", "walking on", "running on"}, \
        [n.text for n in negs]
    assert not any(n.to == "seated on" for n in negs)  # a synonym says the same
    negs, gen = _negatives(bus, [man, bus], ("replace_rel",))
    assert not negs, [n.text for n in negs]  # not 'a red bus walking at a curb'
    assert gen.rejected["replace_rel", "implausible: a posture for a thing"] > 0
    # a posture replaces no other verb ('holding a kite' -> 'standing on a kite', coco_181303)
    boy = _graph([("boy", ["small"]), ("kite", [])], [(0, "holding", 1)])
    negs, _ = _negatives(boy, [boy, man, _graph([("boy", []), ("kite", [])], [(0, "flying", 1)])], ("replace_rel",))
    assert not any(n.to.partition(" ")[0] in lexicon.postures() for n in negs), [n.text for n in negs]


def test_add_att_never_adds_what_the_object_typically_is():
    # Issue 19's 'blue sky', 'glass window': an added attribute the object nearly always has is likely
    # what the picture shows. (Sky and window are background nouns pseudo-captions leave out; human
    # captions name them, and the rule is the same: here a banana and a bottle.)
    bananas = [_graph([("banana", ["yellow"]), ("plate", [])], []) for _ in range(5)] + [
        _graph([("banana", ["green"])], [])] * 2
    bottles = [_graph([("bottle", ["glass"]), ("table", [])], []) for _ in range(5)] + [
        _graph([("bottle", ["plastic"])], [])] * 2
    for g, typical in ((_graph([("banana", ["small"]), ("plate", ["white"])], []), "yellow banana"),
                       (_graph([("bottle", ["small"]), ("table", ["wooden"])], []), "glass bottle")):
        negs, _ = _negatives(g, [*bananas, *bottles], ("add_att",), seeds=20)
        assert not any(typical in n.text for n in negs), [n.text for n in negs]
        assert negs  # what is seen on it but not typical still makes an edit ('a green banana')
    negs, _ = _negatives(_graph([("banana", ["small"]), ("plate", ["white"])], []), [*bananas, *bottles], ("add_att",),
                         seeds=20)
    assert any("green banana" in n.text for n in negs), [n.text for n in negs]
    kg = KG(WordNet(enabled=False))
    for g in bananas:
        kg.add_graph(g)
    assert kg.typical("banana", "yellow") and not kg.typical("banana", "green")


def test_add_obj_spreads_over_objects_and_skips_those_likely_in_the_picture():
    # VG sample: '… and a chair' was 63 of 197 add_obj. A chair comes with every kitchen in this corpus:
    # a kitchen's picture likely shows one. Elsewhere the added object follows what is specific to the
    # named one (a lamp's shade) before what is merely frequent (the chair).
    kitchens = [_graph([("kitchen", []), ("chair", []), ("stove", [])], []) for _ in range(4)]
    lamps = [_graph([("lamp", []), ("shade", [])], []), _graph([("lamp", []), ("chair", [])], [])]
    rooms = [_graph([("chair", []), (f"thing{i}", [])], []) for i in range(6)]
    corpus = [*kitchens, *lamps, *rooms]
    negs, gen = _negatives(_graph([("kitchen", ["white"])], []), corpus, ("add_obj",))
    assert not any(n.to == "chair" for n in negs), [n.text for n in negs]
    assert gen.rejected["add_obj", "likely in the picture: the corpus has it with most images of a named object"] > 0
    kg = KG(WordNet(enabled=False))
    for g in corpus:
        kg.add_graph(g)
    assert kg.association("shade", ["lamp"]) > kg.association("chair", ["lamp"])


def test_add_att_contradicts_an_attribute_the_graph_knows():
    # VG: the graph knows the cup is white. 'a small cup' -> 'a small plastic cup' may be true (the
    # graph says nothing of its material); 'a small red cup' is false for the image.
    g = _graph([("cup", ["white", "small"]), ("table", [])], [(0, "on", 1)])
    corpus = [g, *[_graph([("cup", [c, m]), ("table", [])], [])
                   for c in ("red", "blue", "green") for m in ("plastic", "glass", "metal")]]
    corpus += corpus[1:]  # each seen twice: nothing typical, nothing pruned
    negs, _ = _negatives(g, corpus, ("add_att",), seeds=20)
    category = lexicon.attribute_category()
    on_cup = [n for n in negs if "cup" in n.caption and "white" not in n.caption]
    assert on_cup, [n.text for n in negs]
    assert all(category[n.to] == "colour" and n.to != "white" for n in on_cup), [n.text for n in on_cup]


def test_no_attribute_on_a_person_that_describes_no_person(wordnet_ready):
    # COCO mini: 'Person cooking an eggs …' -> 'Long Person cooking an eggs …', 'a thick man'; a person
    # takes no material, shape or pattern either ('a wooden man')
    person = _graph([("person", ["short"]), ("egg", ["white"])], [(0, "cooking", 1)])
    corpus = [person] + [_graph([("person", [a]), ("table", ["long", "wooden", "round"])], [])
                         for a in ("long", "thick", "tall", "young", "wooden", "round", "striped")] * 2
    negs, _ = _negatives(person, corpus, ("add_att", "replace_att", "swap_att"), seeds=20,
                         wordnet=WordNet(enabled=True))  # (WordNet says what a person is)
    on_person = [n for n in negs if any(f"{a} person" in n.text for a in
                                        ("long", "thick", "wooden", "round", "striped", "wide", "flat"))]
    assert not on_person, [n.text for n in on_person]
    assert any("tall person" in n.text for n in negs), [n.text for n in negs]  # short -> tall stays
    assert KG(WordNet(enabled=True)).is_person("person")  # WordNet files 'person' under noun.Tops


def test_replace_obj_keeps_a_noun_modifier_only_where_the_corpus_shows_it(wordnet_ready):
    # COCO mini: 'a speed bike locked to a black pole' -> 'a speed street …', 'hit a tennis ball' ->
    # 'hit a tennis counter'. A colour moves with any object; 'speed' and 'tennis' belong to their noun.
    wn = WordNet(enabled=True)
    bike = _graph([("bike", ["speed"]), ("pole", ["black"])], [(0, "locked to", 1)])
    ball = _graph([("woman", []), ("ball", ["tennis", "yellow"])], [(0, "hit", 1)])
    things = _graph([("street", ["wet"]), ("counter", ["white"]), ("car", ["red"])], [])
    for g, name, mod in ((bike, "bike", "speed"), (ball, "ball", "tennis")):
        negs, gen = _negatives(g, [bike, ball, things], ("replace_obj",), wordnet=wn)
        assert not [n.text for n in negs if n.from_ == name and mod in n.text], [n.text for n in negs]
        assert gen.rejected["replace_obj", "implausible: a noun modifier the corpus never shows on the new object"]
    fast_car = _graph([("car", ["speed"])], [])
    negs, _ = _negatives(bike, [bike, things, fast_car], ("replace_obj",), wordnet=wn)
    assert [n.text for n in negs if n.to == "car" and "speed car" in n.text]  # the corpus has a 'speed car'


def test_see_through_is_no_object(spacy_model: str):
    # COCO mini coco_116479: 'A canopy bed with white see through curtains.' gave the object 'see' and,
    # from it, the pseudo-caption 'a white bed in a room, a white see and a white covering'.
    from kgaug.parse import load_nlp, to_caption

    nlp = load_nlp(spacy_model)
    c = to_caption(nlp("A canopy bed with white see through curtains."))
    assert "see" not in [n.name for n in c.nps] and "bed" in [n.name for n in c.nps]


# -- evidence rules: a negative a reader can check (issue 19, docs/QUALITY.md "Now: evidence rules") ----


def test_add_obj_adds_only_a_person_or_an_animal_no_caption_names():
    # COCO mini (judged 'possibly true'): 'a man in a dirty room and a ball', 'a bathroom sink … and a
    # bathtub', 'a couple of people at a table in a kitchen and a refrigerator'. Captions name the people
    # and animals a picture shows, not every thing in it: only an unnamed person or animal is absent.
    room = _graph([("man", []), ("room", ["dirty"])], [(0, "in", 1)])
    kitchen = _graph([("kitchen", []), ("refrigerator", ["white"])], [])
    corpus = [room, kitchen, _graph([("room", []), ("ball", []), ("dog", [])], []),
              *[_graph([("room", []), ("chair", [])], [])] * 3,
              _graph([("refrigerator", []), ("cat", []), ("sink", [])], []),
              _graph([("refrigerator", []), ("woman", [])], [])]
    negs, _ = _negatives(room, corpus, ("add_obj",), complete=False)
    assert negs and {n.to for n in negs} == {"dog"}, [n.text for n in negs]  # not 'and a ball', not 'and a woman'
    negs, _ = _negatives(kitchen, corpus, ("add_obj",), complete=False)
    assert negs and {n.to for n in negs} <= {"cat", "woman"} and "sink" not in {n.to for n in negs}
    negs, _ = _negatives(room, corpus, ("add_obj",), complete=True)  # a complete graph: the ball is absent
    assert "ball" in {n.to for n in negs}, [n.text for n in negs]


def test_add_obj_takes_no_thing_that_shares_an_animals_name(wordnet_ready):
    # COCO mini: 'a young man sitting on a chair and a mouse', 'a baseball player … and a bat': WordNet's
    # first sense is the animal, the picture's is the computer mouse or the baseball bat.
    assert not lexicon.is_salient("mouse") and not lexicon.is_salient("bat") and lexicon.is_salient("dog")


def test_add_att_adds_only_what_contradicts_a_known_attribute():
    # COCO mini (judged 'cannot be refuted'): 'A woman sitting at an oval table', 'a lone woman sitting
    # under a large umbrella': the captions know neither the table's shape nor the umbrella's size.
    # VG: 'a gray brick sidewalk' where the sidewalk is white, 'a grey sink' where it is silver: too near.
    table = _graph([("woman", []), ("table", [])], [(0, "sitting at", 1)])
    corpus = [table, *[_graph([("table", [s, c]), ("umbrella", ["large"])], []) for s in ("oval", "round", "square")
                       for c in ("brown", "black", "red")]] * 2
    negs, _ = _negatives(table, corpus, ("add_att",), seeds=20, complete=False)
    assert not negs, [n.text for n in negs]
    sink = _graph([("sink", ["silver", "small"]), ("counter", [])], [(0, "on", 1)])
    known = _graph([("sink", []), ("counter", [])], [(0, "on", 1)])  # a caption without the colour
    sinks = [sink, *[_graph([("sink", [c]), ("counter", [])], []) for c in ("grey", "white", "black", "red")]] * 2
    kg = KG(WordNet(enabled=False))
    for g in sinks:
        kg.add_graph(g)
    kg.finalize()
    gen = Generator(kg, per_type=8)
    adds = []
    for seed in range(20):
        rng = random.Random(seed)
        adds += [n for n in gen.for_image(pseudo_captions(known, 3, rng), Evidence(sink, kg), rng) if n.type == "add_att"]
    assert adds and {n.to for n in adds} <= {"black", "red"}, [n.text for n in adds]  # not grey, not white
    # VG: 'a sitting person on a brown chair' where one chair is white and another has no colour: the
    # colour of the chair the caption means is not known
    two = _graph([("sink", ["silver"]), ("sink", []), ("counter", [])], [(0, "on", 2)])
    assert not Evidence(two, kg).categories_of_every("sink") and Evidence(sink, kg).categories_of_every("sink")


def test_replace_att_edits_visual_attributes_and_no_near_colour():
    # COCO mini: 'blankets and other items' -> 'blankets and same items' (no category: not a property a
    # photo shows); VG: 'a grey keyboard and a black desk chair' swapped reads as true (grey, black).
    items = _graph([("item", ["other"]), ("blanket", [])], [])
    negs, _ = _negatives(items, [items, _graph([("item", ["same"])], [])], ("replace_att",), complete=False)
    assert not negs, [n.text for n in negs]
    desk = _graph([("keyboard", ["grey"]), ("chair", ["black"])], [])
    corpus = [desk, _graph([("keyboard", ["black"]), ("chair", ["grey"])], [])]
    negs, _ = _negatives(desk, corpus, ("swap_att", "replace_att"), complete=False)
    assert not any(n.type == "swap_att" for n in negs), [n.text for n in negs]
    assert not any({n.from_, n.to} <= {"grey", "black"} for n in negs), [n.text for n in negs]
    assert not lexicon.contradicts("grey", "silver") and lexicon.contradicts("grey", "red")


def test_replace_obj_keeps_the_kind_the_role_and_no_near_synonym(wordnet_ready):
    wn = WordNet(enabled=True)
    # VG: 'a monitor wearing a white shirt' for a man; COCO mini: 'a food riding skis', 'a group of tables
    # skiing', 'People at the shore' for the beach, 'a bride on a wet beach' for a woman.
    man = _graph([("man", []), ("shirt", ["white"])], [(0, "wearing", 1)])
    monitor = _graph([("monitor", ["black"]), ("desk", [])], [(0, "on", 1)])
    woman = _graph([("woman", []), ("beach", ["wet"])], [(0, "on", 1)])
    corpus = [man, monitor, woman, _graph([("bride", []), ("shore", [])], [(0, "on", 1)]),
              _graph([("boy", []), ("shirt", [])], [(0, "wearing", 1)]), _graph([("dog", []), ("beach", [])], [])]
    negs, _ = _negatives(man, corpus, ("replace_obj",), wordnet=wn, complete=False)
    assert not any(n.to in ("monitor", "desk") for n in negs), [n.text for n in negs]
    negs, _ = _negatives(woman, corpus, ("replace_obj",), wordnet=wn, complete=False)
    assert not any(n.to in ("bride", "shore", "dog") for n in negs), [n.text for n in negs]
    assert any(n.to == "man" for n in negs), [n.text for n in negs]  # a woman -> a man: false, same role
    # VG (judged 'not ruled out'): 'a black helmet' for 'a black hat', 'tan shirts' for tan pants: a
    # thing the captions do not name may be in the picture, a person or an animal would be named.
    purse = _graph([("hat", ["black"]), ("car", ["grey"])], [])
    things = [purse, _graph([("helmet", ["black"]), ("car", ["grey"])], []), _graph([("cat", []), ("dog", [])], [])]
    negs, gen = _negatives(purse, things, ("replace_obj",), wordnet=wn, complete=False)
    assert not negs and gen.rejected["replace_obj", "a thing for a thing: the captions do not show it absent"] > 0
    negs, _ = _negatives(purse, things, ("replace_obj",), wordnet=wn, complete=True)
    assert "helmet" in {n.to for n in negs}, "a complete graph shows the helmet absent"
    assert lexicon.near_synonym("beach", "shore") and lexicon.person_contrast("woman", "man")
    assert not lexicon.person_contrast("woman", "bride")
    kg = KG(wn)
    assert not kg.depicted_kind("direction") and kg.depicted_kind("cow") and not kg.same_kind("man", "table")


def test_a_garbled_caption_is_not_edited(wordnet_ready):
    # COCO mini: 'A young boy sittingon a toilette seat in a bathroom.', 'A skateboarder with one fut on a
    # skateboard'; VG: 'chair rolls office chair rolls a roll around chair'. A negative keeps its
    # caption's flaw, and a reader rejects it for that.
    from kgaug.captions import NP, Caption

    kg = KG(WordNet(enabled=True))
    g = _graph([("boy", ["young"]), ("seat", []), ("bathroom", [])], [])
    kg.add_graph(g)
    kg.finalize()
    gen = Generator(kg, per_type=4)
    typo = Caption("a young boy sittingon a seat.", [NP("boy", False, (8, 11), (0, 11), [("young", (2, 7))]),
                                                     NP("seat", False, (24, 28), (22, 28), [])], [], "human")
    twice = Caption("a chair rolls office chair rolls.", [NP("chair", False, (2, 7), (0, 7), [])], [], "human")
    fine = Caption("a young boy on a seat.", [NP("boy", False, (8, 11), (0, 11), [("young", (2, 7))]),
                                               NP("seat", False, (17, 21), (15, 21), [])], [], "human")
    assert not gen._editable(typo) and not gen._editable(twice) and gen._editable(fine)
    negs = gen.for_image([typo, twice], Evidence(g, kg), random.Random(0))
    assert not negs
    assert gen.rejected["source_caption", "a word WordNet does not know (a typo, run-together words)"] == 2
    assert gen.rejected["source_caption", "a phrase said twice (garbled text)"] == 2  # (asked twice)


# -- contradiction rules: the edit states what the picture cannot also show (docs/QUALITY.md "Now") --


def test_replace_att_needs_every_object_of_the_name_described_and_a_word_that_fits(wordnet_ready):
    # VG (judged 'not ruled out'): 'the pillow is brown' -> 'the pillow is white' where two more pillows
    # have no colour; COCO mini: 'a retro kitchen … and an old ad' -> 'a young ad', 'A young boy' -> 'An
    # old boy', 'a crowded beach and a large amount' -> 'a small amount', 'green grass' -> 'white grass'.
    wn = WordNet(enabled=True)
    pillows = _graph([("pillow", ["brown"]), ("pillow", []), ("pillow", []), ("bed", ["white"])], [(0, "on", 3)])
    colours = [_graph([("pillow", [c]), ("bed", [c])], []) for c in ("white", "red", "blue", "green")]
    negs, gen = _negatives(pillows, [pillows, *colours], ("replace_att",), wordnet=wn, complete=False)
    assert not any(n.fact == "brown(pillow)" for n in negs), [n.text for n in negs]
    assert gen.rejected["replace_att", "an object of this name whose attribute the image does not give"] > 0
    assert any(n.fact == "white(bed)" for n in negs), [n.text for n in negs]  # the one bed is white: false
    assert Evidence(pillows, KG(wn)).category_values("pillow", "colour") is None
    assert Evidence(pillows, KG(wn)).category_values("bed", "colour") == {"white"}
    scene = _graph([("ad", ["old"]), ("amount", ["large"]), ("grass", ["green"]), ("car", ["old"])], [])
    man = _graph([("boy", ["young"]), ("man", ["old"])], [])  # (WordNet: a boy may be a man; apart here)
    corpus = [scene, man, _graph([("grass", ["brown"]), ("car", ["new", "red"]), ("man", ["young"])], [])]
    negs, _ = _negatives(scene, corpus, ("replace_att",), wordnet=wn, complete=False, seeds=20)
    got = {(n.fact, n.to) for n in negs}
    negs, _ = _negatives(_graph([("man", ["old"])], []), corpus, ("replace_att",), wordnet=wn, complete=False)
    negs += _negatives(_graph([("boy", ["young"])], []), corpus, ("replace_att",), wordnet=wn, complete=False)[0]
    got |= {(n.fact, n.to) for n in negs}
    assert ("old(car)", "new") in got and ("old(man)", "young") in got, got
    assert not any(f in ("old(ad)", "large(amount)") for f, _ in got), got  # no 'young ad', no 'small amount'
    assert ("young(boy)", "old") not in got and ("old(car)", "young") not in got, got
    assert not any(f == "green(grass)" and to != "brown" for f, to in got), got  # grass: only a colour grass has
    assert lexicon.named_against("old", "boy") and not lexicon.fits_animacy("young", animate=False)


def test_replace_att_leaves_compound_adjectives_and_sizes_alone():
    # COCO mini: 'an old fashioned center island' -> 'a young fashioned center island' ('old' is not the
    # island's); 'a big bear' -> 'a small bear', 'a small road' -> 'a big road' (judged by eye).
    from kgaug.captions import NP, Caption

    kg = KG(WordNet(enabled=False))
    g = _graph([("island", ["old"]), ("bear", ["big", "brown"])], [])
    kg.add_graph(g)
    kg.add_graph(_graph([("island", ["new"]), ("bear", ["small", "black"])], []))
    kg.finalize()
    text = "an old fashioned island and a big brown bear"
    c = Caption(text, [NP("island", False, (17, 23), (0, 23), [("old", (3, 6))]),
                       NP("bear", False, (40, 44), (28, 44), [("big", (30, 33)), ("brown", (34, 39))])], [], "human")
    gen = Generator(kg, per_type=8)
    negs = gen.for_image([c], Evidence(g, kg, {"island", "bear"}), random.Random(0))
    assert [n.text for n in negs if n.type == "replace_att"] == ["an old fashioned island and a big black bear"]
    gen = Generator(kg, per_type=8, complete_graphs=True)  # the synthetic world: sizes are exact there
    negs = gen.for_image([c], Evidence(g, kg, {"island", "bear"}), random.Random(0))
    assert "an old fashioned island and a small brown bear" in [n.text for n in negs]


def test_replace_rel_changes_a_posture_a_photo_tells_apart_and_no_implied_verb(wordnet_ready):
    # COCO mini (judged 'possibly true'): 'People walking on sand' -> 'People standing on sand', 'a white
    # bird standing on a roof' -> 'sitting', 'young boys swinging a bat' -> 'holding a bat', 'Red laptop on a
    # table' -> 'under a table', 'Two orange roses in a small vase' -> 'outside a small vase'.
    wn = WordNet(enabled=True)
    people = _graph([("people", []), ("sand", [])], [(0, "walking on", 1)])
    bird = _graph([("bird", ["white"]), ("roof", [])], [(0, "standing on", 1)])
    man = _graph([("man", []), ("bench", [])], [(0, "sitting on", 1)])
    boy = _graph([("boy", []), ("bat", [])], [(0, "swinging", 1)])
    laptop = _graph([("laptop", []), ("table", [])], [(0, "on", 1)])
    cat = _graph([("cat", []), ("table", [])], [(0, "on", 1)])
    corpus = [people, bird, man, boy, laptop, cat, _graph([("boy", []), ("bat", [])], [(0, "holding", 1)]),
              _graph([("boy", []), ("bat", [])], [(0, "throwing", 1)]), _graph([("dog", []), ("table", [])], [(0, "under", 1)])]
    got = {}
    for g in (people, bird, man, boy, laptop, cat):
        negs, gen = _negatives(g, corpus, ("replace_rel",), wordnet=wn, complete=False)
        got[g.objects[0].name] = {n.to for n in negs}
    assert not got["people"] and got["bird"] <= {"lying on"}, got  # a group, a perched bird
    assert "standing on" in got["man"] and "holding" not in got["boy"] and "throwing" in got["boy"], got
    assert "under" not in got["laptop"] and "under" in got["cat"], got  # a cat moves itself under a table
    assert lexicon.posture_contrast("sitting", "standing", person=True)
    assert not lexicon.posture_contrast("sitting", "standing", person=False)
    assert not lexicon.posture_contrast("walking", "standing", person=True)
    kg = KG(wn)
    assert not kg.is_person("cat") and not kg.is_person("bear") and kg.is_person("person")  # (not 'a guy')


def test_swaps_keep_what_reads_right_on_the_new_object(wordnet_ready):
    # COCO mini: 'the thin water and a large boat' -> 'the large water and a thin boat' (sizes); VG: 'a grey
    # road and a blue car' -> 'a blue road' (roads are grey), 'black cows and a green pasture' -> 'green
    # cows', 'a white telephone on a table' -> 'a white table on a telephone'.
    wn = WordNet(enabled=True)
    water = _graph([("water", ["thin"]), ("boat", ["large"])], [])
    road = _graph([("road", ["grey"]), ("car", ["blue"])], [])
    cows = _graph([("cow", ["black"]), ("pasture", ["green"])], [])
    cup = _graph([("cup", ["red"]), ("plate", ["blue"])], [])
    corpus = [water, road, cows, cup, *[_graph([("road", ["grey"]), ("car", [c])], []) for c in ("red", "white")],
              _graph([("cup", ["blue"]), ("plate", ["red"]), ("car", ["green"])], []), _graph([("cow", ["white"])], [])]
    swapped = {}
    for g in (water, road, cows, cup):
        negs, gen = _negatives(g, corpus, ("swap_att",), wordnet=wn, complete=False)
        swapped[g.objects[0].name] = [n.text for n in negs]
    assert not swapped["water"] and not swapped["road"] and not swapped["cow"], swapped
    assert swapped["cup"], swapped  # a blue cup and a red plate: both read right
    phone = _graph([("telephone", ["white"]), ("table", ["wooden"])], [(0, "on", 1)])
    tables = [phone, _graph([("table", ["white"]), ("telephone", ["wooden"])], []),
              *[_graph([("cup", []), ("table", [])], [(0, "on", 1)])] * 3]
    negs, gen = _negatives(phone, tables, ("swap_obj",), wordnet=wn, complete=False)
    assert not any("on a wooden telephone" in n.text for n in negs), [n.text for n in negs]
    assert gen.rejected["swap_obj", "implausible: the corpus does not have the one in such a place of the other"] > 0


def test_add_obj_needs_captions_of_the_whole_image_and_goes_beside_the_subject():
    # VG (judged 'not ruled out': 0 of 9 good): 'paintings on a red wall and a man' — a graph of region
    # phrases does not say no one is in the picture. COCO mini: 'People are having fun on a crowded beach
    # and a horse' reads as a horse on the beach; 'People and a horse are having fun …' does not.
    from kgaug.captions import NP, Caption

    wall = _graph([("painting", []), ("wall", ["red"])], [(0, "on", 1)])
    corpus = [wall, *[_graph([("wall", []), ("man", [])], [])] * 2, _graph([("beach", []), ("horse", [])], []),
              *[_graph([("people", []), ("beach", [])], [])] * 3]
    negs, gen = _negatives(wall, corpus, ("add_obj",), complete=False, captioned=False)
    assert not negs
    assert gen.rejected["add_obj", "no caption of the whole image: an unnamed person or animal may be in it"] > 0
    kg = KG(WordNet(enabled=False))
    for g in corpus:
        kg.add_graph(g)
    kg.finalize()
    beach = _graph([("people", []), ("beach", ["crowded"])], [])
    text = "People are walking on a crowded beach."
    at = text.index("a crowded")
    c = Caption(text, [NP("people", True, (0, 6), (0, 6), [], True),
                       NP("beach", False, (at + 10, at + 15), (at, at + 15), [("crowded", (at + 2, at + 9))])],
                [], "human", verb=True)
    negs = [n for n in Generator(kg, per_type=2).for_image([c], Evidence(beach, kg, {"people", "beach"}), random.Random(0))
            if n.type == "add_obj"]
    assert [n.text for n in negs] == ["People and a horse are walking on a crowded beach."], [n.text for n in negs]


def test_people_s_captions_are_edited_first_and_one_attribute_of_two_nouns_is_not_swapped():
    # COCO mini (judged 'not fluent'): 'many food and an open refrigerator and a chef', 'other items and
    # multiple buttons and a person' were edited from pseudo-captions of a parsed graph, though the image
    # has five human captions; 'A picture of a large kitchen with white cabinets and appliances' ->
    # '… white appliances and cabinets' says the same thing.
    from kgaug.captions import NP, Caption

    kg = KG(WordNet(enabled=False))
    g = _graph([("kitchen", ["large"]), ("cabinet", ["white"]), ("appliance", []), ("food", [])], [])
    for x in (g, _graph([("kitchen", []), ("dog", [])], []), _graph([("food", []), ("cat", [])], []),
              *[_graph([("food", []), ("plate", [])], [])] * 2, _graph([("appliance", ["white"]), ("cabinet", [])], [])):
        kg.add_graph(x)
    kg.finalize()
    text = "A large kitchen with white cabinets and appliances."
    human = Caption(text, [NP("kitchen", False, (8, 15), (0, 15), [("large", (2, 7))]),
                           NP("cabinet", True, (27, 35), (21, 35), [("white", (21, 26))]),
                           NP("appliance", True, (40, 50), (40, 50), [])], [], "human")
    pseudo = Caption("many food.", [NP("food", False, (5, 9), (0, 9), [("many", (0, 4))])], [], "dense")
    gen = Generator(kg, per_type=2)
    negs = gen.for_image([human, pseudo], Evidence(g, kg, {"kitchen", "cabinets", "appliances", "food"}),
                         random.Random(0))
    assert "replace_att" in {n.type for n in negs if n.caption == text}, [n.text for n in negs]
    # the pseudo-caption gives no added object: add_obj takes people's captions only, where there are any
    assert [n.text for n in negs if n.caption != text] == [], [n.text for n in negs]
    assert not any(n.type == "swap_obj" for n in negs), [n.text for n in negs]
    assert gen.rejected["swap_obj", "two nouns one attribute may describe ('white cabinets and appliances')"] > 0


def test_add_obj_reads_as_one_scene(wordnet_ready):
    # COCO mini (judged bad by both readers): 'A plane is flying in a blue cloudy sky and a man', 'A camera
    # sits on a tripod connected to a laptop and a cat', 'A woman in a sari rides on the back of a
    # motorcycle and a fox', 'Several plates of food are set on a table and a chef'. An object appended
    # to a clause joins the place of its last phrase; beside a singular subject the verb must agree; a
    # thing's clause takes no person or animal; and the corpus must have the added one with every object
    # the caption names.
    from kgaug.captions import NP, Caption

    def caption(text: str, nps: list[tuple[str, str, bool]], agree: tuple[str, str] | None = None,
                verb: bool = True) -> Caption:
        """Noun phrases as (phrase, name, plural), the head its last word; the first is the subject,
        whose finite verb `agree` gives (word, plural form)."""
        out, at = [], 0
        for k, (phrase, name, plural) in enumerate(nps):
            i = text.index(phrase, at)
            at = i + len(phrase)
            bits = []
            if k == 0 and agree:
                j = text.index(" " + agree[0] + " ") + 1
                bits = [((j, j + len(agree[0])), agree[1])]
            out.append(NP(name, plural, (at - len(phrase.split()[-1]), at), (i, at), [],
                          k == 0 and agree is not None and agree[0] not in ("is", "was"), bits))
        return Caption(text, out, [], "human", verb)

    corpus = [*[_graph([("dog", []), ("cat", []), ("camera", []), ("kitchen", [])], [])] * 2,
              *[_graph([("plane", []), ("sky", []), ("man", []), ("bird", [])], [])] * 2,
              _graph([("table", []), ("plate", []), ("man", []), ("food", [])], []),
              _graph([("tripod", []), ("camera", []), ("cat", []), ("laptop", [])], []),
              _graph([("bathroom", []), ("sink", [])], []), _graph([("sink", []), ("cat", [])], []),
              _graph([("bathroom", []), ("horse", [])], []), *[_graph([("dog", []), ("ball", [])], [])] * 3,
              *[_graph([("camera", []), ("table", [])], [])] * 4, *[_graph([("kitchen", []), ("stove", [])], [])] * 3]
    kg = KG(WordNet())
    for g in corpus:
        kg.add_graph(g)
    kg.finalize()

    def added(c: Caption) -> list[str]:
        g = _graph([(n.name, []) for n in c.nps], [])
        words = {n.name for n in c.nps} | {lexicon.plural(n.name) for n in c.nps}
        gen = Generator(kg, per_type=3)
        return sorted(n.text for n in gen.for_image([c], Evidence(g, kg, words), random.Random(0)) if n.type == "add_obj")

    plane = caption("A plane is flying in a blue cloudy sky.", [("A plane", "plane", False), ("a blue cloudy sky", "sky", False)], ("is", "are"))
    assert not any(t.endswith("sky and a bird.") or t.endswith("sky and a cat.") for t in added(plane))
    dog = caption("The dog is curious about the camera.", [("The dog", "dog", False), ("the camera", "camera", False)], ("is", "are"))
    assert added(dog) == ["The dog and a cat are curious about the camera."]
    camera = caption("A camera sits on a tripod next to a laptop.", [("A camera", "camera", False), ("a tripod", "tripod", False), ("a laptop", "laptop", False)], ("sits", "sit"))
    assert added(camera) == []  # not 'A camera and a cat sit on a tripod'
    plates = caption("Several plates of food are set on a table.", [("Several plates", "plate", True), ("food", "food", False), ("a table", "table", False)])
    assert added(plates) == []  # not '... on a table and a man'
    # with a list the added one joins it; only an animal the corpus has with the sink and the bathroom
    bathroom = caption("A white bathroom with a sink", [("A white bathroom", "bathroom", False), ("a sink", "sink", False)], verb=False)
    assert added(bathroom) == [], added(bathroom)  # a horse is seen in a bathroom, a cat at a sink: neither both
    kitchen = caption("A kitchen with a camera", [("A kitchen", "kitchen", False), ("a camera", "camera", False)], verb=False)
    assert added(kitchen) == ["A kitchen with a camera and a cat", "A kitchen with a camera and a dog"]


def test_a_burger_is_food_not_a_burgher(wordnet_ready):
    # COCO mini: 'A burger and a cat sitting on a table' — WordNet's first sense of 'burger' is a citizen
    # (no use in its tagged corpus), so the burger was a person that a cat could sit beside.
    kg = KG(WordNet())
    assert not kg.is_person("burger") and not kg.is_person("hot dog")
    assert kg.is_person("batter") and kg.is_person("chef")


def test_replace_att_takes_materials_the_corpus_has_on_the_noun_and_no_colour_the_picture_shows():
    # COCO mini (judged bad): 'A piece of broccoli on a brick fork', 'a laptop on the top of a brick desk';
    # 'a green bus' for a white bus with green stripes.
    corpus = [_graph([("fork", ["plastic"])], []), _graph([("wall", ["brick"])], []), _graph([("desk", ["wooden"])], []),
              _graph([("bus", ["green"]), ("stripe", ["red"])], []), _graph([("car", ["blue"])], [])]
    fork = _graph([("fork", ["metal"]), ("broccoli", [])], [(1, "on", 0)])
    negs, _ = _negatives(fork, corpus + [fork], ("replace_att",), complete=False)
    assert negs and all("brick" not in n.text and "wooden" not in n.text for n in negs), [n.text for n in negs]
    assert any("plastic fork" in n.text for n in negs), [n.text for n in negs]
    bus = _graph([("bus", ["white"]), ("stripe", ["green"])], [(0, "with", 1)])
    negs, _ = _negatives(bus, corpus + [bus], ("replace_att",), complete=False)
    assert not any("green bus" in n.text for n in negs), [n.text for n in negs]
    # a colour on a thing not related to the bus is no reason to keep it from the bus (VG lists colours of
    # everything in view: excluding them all leaves 'a yellow road', 'a blue road')
    street = _graph([("bus", ["white"]), ("car", ["green"])], [])
    negs, _ = _negatives(street, corpus + [street], ("replace_att",), complete=False)
    assert any("green bus" in n.text for n in negs), [n.text for n in negs]
