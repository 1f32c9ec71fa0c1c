"""`kgaug.grounding.read`: what a text names, as named records (`Mention`, `AttWord`, `RelPhrase`,
`Problem`), and the checks built on them."""

from __future__ import annotations

from kgaug import grounding

FACTS = ["dog", "black(dog)", "couch", "white(couch)", "on(dog,couch)", "cat", "brown(cat)", "near(cat,couch)"]
VOCAB = grounding.Vocab.build(["dog", "couch", "cat", "tree", "man", "table"], ["black", "white", "brown", "red"],
                      ["on", "under", "near", "riding"])


def test_read_names_objects_attributes_relations_and_problems_by_token():
    r = grounding.read("A black dog on a white couch under a tree, no cat.", grounding.ground(FACTS), VOCAB)
    # tokens: a(0) black(1) dog(2) on(3) a(4) white(5) couch(6) under(7) a(8) tree(9) no(10) cat(11)
    assert r.mentions == [grounding.Mention("dog", 2, 3), grounding.Mention("couch", 6, 7), grounding.Mention("cat", 11, 12)]
    assert r.attributes == [grounding.AttWord({"black"}, 1), grounding.AttWord({"white"}, 5)]
    assert [(x.preds, x.start) for x in r.relations] == [({"on"}, 3)]
    assert r.problems == [grounding.Problem(grounding.NEGATION, "no"), grounding.Problem(grounding.INVENTS_OBJECT, "tree"),
                          grounding.Problem(grounding.INVENTS_RELATION, "under")]


def test_problems_bind_each_attribute_to_the_object_it_describes():
    found = grounding.problems("A white dog on a black couch.", grounding.ground(FACTS), VOCAB, ["dog", "couch", "cat"])
    assert found == [grounding.Problem(grounding.DROPS_OBJECT, "cat"), grounding.Problem(grounding.WRONG_ATTRIBUTE, "white on dog"),
                     grounding.Problem(grounding.WRONG_ATTRIBUTE, "black on couch")]
    assert found[0] == (grounding.DROPS_OBJECT, "cat")  # still a (reason, word) pair to callers
    assert grounding.check_rewrite("A white dog on a black couch.", FACTS, ["dog", "couch"], VOCAB) == grounding.WRONG_ATTRIBUTE


def test_extract_and_states_read_relations_between_the_nearest_objects():
    g = grounding.ground(FACTS)
    assert grounding.extract("A white couch on a black dog.", g, VOCAB) == {
        "couch", "dog", "white(couch)", "black(dog)", "on(couch,dog)"}
    assert grounding.states("A black dog on a white couch.", "on(dog,couch)", g, VOCAB)
    assert not grounding.states("A white couch on a black dog.", "on(dog,couch)", g, VOCAB)
