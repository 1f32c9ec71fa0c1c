"""Count known error classes of hard negatives over a `kgaug build` table (docs/BENCHMARKS.md,
"kgaug negatives: error classes removed by the stricter rules").

    NLTK_DATA=.cache/nltk_data .venv/bin/python benchmarks/negative_audit.py OUT_DIR [OUT_DIR ...]

Each class is something a careful reader of the real-data tables found wrong: a replace_obj to a
sense nobody means, a colour newly put before a person or body-part noun, a replace_rel to a vague
relation, an add_obj of a background noun or of a person, and how often add_att adds "white".
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from kgaug import lexicon
from kgaug.kg import KG
from kgaug.table import read_rows
from kgaug.wordnet import WordNet

RARE_SENSES = ("match", "key", "press", "cardinal")  # replacements the readers found (woman -> match, ...)
PEOPLE = ("man", "men", "woman", "women", "people", "person", "boy", "girl", "child", "kid", "player", "skier",
          "hand", "face", "guy", "lady", "adult")


def audit(out: Path, kg: KG) -> dict:
    colours = "|".join(lexicon.load("attributes")["categories"]["colour"])
    on_person = re.compile(rf"\b(?:{colours}) (?:{'|'.join(PEOPLE)})\b")
    vague = lexicon.relation_words("vague")
    negs = [n for r in read_rows(out) for n in r["hard_negatives"]]
    add_obj = [n for n in negs if n["type"] == "add_obj"]
    add_att = [n for n in negs if n["type"] == "add_att"]
    return {
        "negatives": len(negs),
        "replace_obj_rare_sense": sum(n["type"] == "replace_obj" and n["to"] in RARE_SENSES for n in negs),
        "colour_put_on_person": sum(n["type"] in ("add_att", "swap_att", "replace_att", "swap_obj")
                                    and bool(on_person.search(n["text"].lower()))
                                    and not on_person.search(n["caption"].lower()) for n in negs),
        "replace_rel_to_vague": sum(n["type"] == "replace_rel" and n["to"] in vague for n in negs),
        "add_obj_background": sum(lexicon.is_background(n["to"]) for n in add_obj),
        "add_obj_person": sum(kg.is_person(n["to"]) for n in add_obj),
        "add_att_white_percent": round(100 * sum(n["to"] == "white" for n in add_att) / max(1, len(add_att))),
    }


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    kg = KG(WordNet(enabled=True))
    print(json.dumps({d: audit(Path(d), kg) for d in sys.argv[1:]}, indent=1))


if __name__ == "__main__":
    main()
