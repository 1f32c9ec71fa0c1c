"""Report pages mark exactly the words a hard negative changed."""

from kgclip.page import edited_words, highlight_edit


def test_marks_the_edited_occurrence_not_the_first():
    neg = {"type": "replace_att", "text": "a yellow circle and a yellow triangle", "to": "yellow",
           "caption": "a yellow circle and a blue triangle"}
    assert highlight_edit(neg["text"], neg, "md") == "a yellow circle and a **yellow** triangle"


def test_swaps_and_additions_are_marked():
    assert edited_words("a blue square left of a red circle", "a red square left of a blue circle") == [
        False, True, False, False, False, False, True, False]
    neg = {"type": "add_obj", "text": "a red square and a green star left of a circle",
           "caption": "a red square left of a circle"}
    html_out = highlight_edit(neg["text"], neg, "html")
    assert html_out.count("<b ") == 4 and "star</b>" in html_out and "square</b>" not in html_out
