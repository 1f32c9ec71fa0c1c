"""How often a caption that allows a swap gets one (issue 19, goal 4; docs/QUALITY.md).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/swap_coverage.py OUT_DIR [--spacy-model NAME] \
        [--examples 10] [--seed 0] [--name NAME] [--json FILE]

OUT_DIR is a `kgaug build` output folder built from captions (coco, captions, webdataset). Every
human caption of the table (`captions`) is parsed again with kgaug's own caption parser, the way
`kgaug build` parses it (`kgaug.parse.load_nlp(--spacy-model)`, `language_problem`, `nlp.pipe`,
`to_caption`; `--spacy-model` defaults to the one the table was built with, read from its
`report.json` options, else kgaug's default `en_core_web_sm`), so "names two objects" means what
kgaug sees: objects are the parse's noun phrases (`Caption.nps`: names already filtered by
`lexicon.is_not_object` / the quantifier rules), attributes their `atts`. Two goal-4 measures:

1. **swap_att-eligible**: the caption names at least two objects with *different names* that each
   carry at least one attribute (the pairs `Generator._pairs` lists for swap_att, kept only where both
   have an attribute, which `Generator.swap_att` requires). An attribute is whatever the parse puts
   in `atts`: adjectives, but also counts ("two") and noun modifiers ("parking" meter). Counted: such
   captions, and those for which the row has at least one `swap_att` negative whose `caption` is
   that caption. Also given: how many eligible captions have, on each object of such a pair, an
   attribute of a known category other than a count (`lexicon.attribute_category`; only those can
   `swap_att` exchange), and how many of them got a swap_att.
2. **swap_obj-eligible** ("two swappable objects"): the caption has a pair of noun phrases that
   `Generator.swap_obj_slots` lists, i.e. different names, the same grammatical number (a swap must
   not break agreement), and at least one of the two carries an attribute (without one, exchanging
   the nouns states what reverse_rel states). The pair is "swappable" before the knowledge graph is
   asked: `Generator.swap_obj` may still refuse it (an attribute that may not move onto the other
   object, one the corpus never shows on it, a verb role the corpus never has) and the new facts
   must be false for the image; those refusals are what this measure counts as misses.

Per measure: eligible captions, those with a swap of the type from that caption, the share (goal:
≥ 60 % swap_att, ≥ 50 % swap_obj), how many of the misses sit in an image that has the type from
another caption (`kgaug build` keeps at most `--negatives-per-type` of a type per image, so a
per-caption share is capped by it), the images with an eligible caption and the share of those with
the type, the swaps whose caption this parse does not count eligible (0 unless the parse differs
from the build's), and `--examples` eligible captions that got no swap (a seeded sample). Prints
markdown; `--json FILE` writes the numbers. Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kgaug import lexicon  # noqa: E402
from kgaug.captions import NP, Caption  # noqa: E402
from kgaug.table import read_report, read_rows  # noqa: E402
from kgclip.atomic import atomic_write_json  # noqa: E402

KINDS = ("swap_att", "swap_obj")
GOALS = {"swap_att": 0.60, "swap_obj": 0.50}
DEFAULT_MODEL = "en_core_web_sm"  # `kgaug build`'s default --spacy-model


# --- eligibility (pure) ----------------------------------------------------------------------------

def _pairs(c: Caption) -> list[tuple[NP, NP]]:
    """Pairs of the caption's noun phrases with different names (`Generator._pairs`)."""
    nps = c.nps
    return [(a, nps[k]) for i, a in enumerate(nps) for k in range(i + 1, len(nps)) if a.name != nps[k].name]


def swap_att_pairs(c: Caption) -> list[tuple[NP, NP]]:
    """Pairs of differently named objects that each carry at least one attribute."""
    return [(a, b) for a, b in _pairs(c) if a.atts and b.atts]


def swap_obj_pairs(c: Caption) -> list[tuple[NP, NP]]:
    """Pairs `Generator.swap_obj_slots` lists: different names, same number, an attribute on either."""
    return [(a, b) for a, b in _pairs(c) if a.plural == b.plural and (a.atts or b.atts)]


def _categorised(np: NP) -> bool:
    category = lexicon.attribute_category()
    return any(category.get(a) not in (None, "count") for a, _ in np.atts)


def swap_att_categorised(c: Caption) -> bool:
    """An eligible pair whose two objects each carry an attribute of a known category (not a count)."""
    return any(_categorised(a) and _categorised(b) for a, b in swap_att_pairs(c))


ELIGIBLE: dict[str, Callable[[Caption], list[tuple[NP, NP]]]] = {"swap_att": swap_att_pairs,
                                                                  "swap_obj": swap_obj_pairs}


def describe(c: Caption) -> str:
    """The parse as read in the examples: 'dog[red] cat[blue, small] table'."""
    return " ".join(f"{np.name}{'(pl)' if np.plural else ''}"
                    + (f"[{', '.join(a for a, _ in np.atts)}]" if np.atts else "") for np in c.nps)


# --- counting (pure) -------------------------------------------------------------------------------

def count(rows: Iterable[Mapping], parses: Mapping[str, Caption | None], examples: int = 10,
          seed: int = 0) -> dict:
    """Goal-4 swap coverage of `rows` (table rows: `key`, `captions`, `hard_negatives`), each human
    caption read through `parses` (caption text -> its parse, None when kgaug would not parse it).
    A caption is counted once per row that holds it."""
    out: dict = {"rows": 0, "captions": 0, "unparsed": 0}
    per: dict[str, dict] = {k: {"eligible": 0, "with_swap": 0, "miss_other_caption": 0, "images_eligible": 0,
                                "images_with_swap": 0, "swaps": 0, "swaps_not_eligible": 0} for k in KINDS}
    per["swap_att"].update(categorised=0, categorised_with_swap=0)
    misses: dict[str, list[dict]] = {k: [] for k in KINDS}
    for row in rows:
        out["rows"] += 1
        by_kind: dict[str, dict[str, int]] = {k: {} for k in KINDS}  # caption -> swaps edited from it
        for n in row.get("hard_negatives") or []:
            if n["type"] in by_kind:
                by_kind[n["type"]][n["caption"]] = by_kind[n["type"]].get(n["caption"], 0) + 1
        image_eligible = dict.fromkeys(KINDS, False)
        for text in row.get("captions") or []:
            out["captions"] += 1
            c = parses.get(text)
            if c is None:
                out["unparsed"] += 1
                continue
            for kind in KINDS:
                p = per[kind]
                if not ELIGIBLE[kind](c):
                    continue
                image_eligible[kind] = True
                p["eligible"] += 1
                strict = kind == "swap_att" and swap_att_categorised(c)
                if strict:
                    p["categorised"] += 1
                if text in by_kind[kind]:
                    p["with_swap"] += 1
                    if strict:
                        p["categorised_with_swap"] += 1
                    continue
                if by_kind[kind]:
                    p["miss_other_caption"] += 1
                misses[kind].append({"key": row["key"], "caption": text, "parse": describe(c)})
        human = set(row.get("captions") or [])
        for kind in KINDS:
            p = per[kind]
            for text, n in by_kind[kind].items():
                if text not in human:
                    continue  # edited from a pseudo-caption
                p["swaps"] += n
                c = parses.get(text)
                if c is None or not ELIGIBLE[kind](c):
                    p["swaps_not_eligible"] += n
            if image_eligible[kind]:
                p["images_eligible"] += 1
                p["images_with_swap"] += bool(by_kind[kind])
    rng = random.Random(seed)
    for kind in KINDS:
        p = per[kind]
        p["share"] = round(p["with_swap"] / p["eligible"], 4) if p["eligible"] else None
        p["image_share"] = round(p["images_with_swap"] / p["images_eligible"], 4) if p["images_eligible"] else None
        p["goal"] = GOALS[kind]
        p["meets_goal"] = None if p["share"] is None else p["share"] >= GOALS[kind]
        pick = sorted(rng.sample(range(len(misses[kind])), min(examples, len(misses[kind]))))
        p["examples"] = [misses[kind][i] for i in pick]
    out.update(per)
    return out


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def markdown(name: str, res: dict) -> str:
    lines = [f"{name}: {res['rows']} images, {res['captions']} human captions ({res['unparsed']} not parsed)", "",
             "| type | eligible captions | with a swap from that caption | share | goal | misses in an image "
             "with the type from another caption | images with an eligible caption | of them with the type |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for kind in KINDS:
        p = res[kind]
        lines.append(f"| {kind} | {p['eligible']} | {p['with_swap']} | {_pct(p['share'])} | ≥ {100 * p['goal']:.0f} % | "
                     f"{p['miss_other_caption']} | {p['images_eligible']} | {p['images_with_swap']} "
                     f"({_pct(p['image_share'])}) |")
    a = res["swap_att"]
    lines += ["", f"swap_att-eligible captions whose pair has a categorised (non-count) attribute on both "
              f"objects: {a['categorised']}, of them with a swap_att: {a['categorised_with_swap']}.",
              "Swaps edited from a human caption that this parse does not count eligible: "
              + ", ".join(f"{k} {res[k]['swaps_not_eligible']} of {res[k]['swaps']}" for k in KINDS) + "."]
    for kind in KINDS:
        lines += ["", f"Eligible for {kind}, no {kind} (seeded sample):", ""]
        lines += [f"- {e['key']}: \"{e['caption']}\" — {e['parse']}" for e in res[kind]["examples"]] or ["- (none)"]
    return "\n".join(lines)


# --- parsing and CLI -------------------------------------------------------------------------------

def parse_captions(texts: Iterable[str], model: str, batch_size: int = 256) -> dict[str, Caption | None]:
    """Each distinct text through kgaug's caption parser as `kgaug build` runs it (`image.CaptionParser`):
    None for a text it rejects (`language_problem`) or finds no object in."""
    from kgaug.parse import language_problem, load_nlp, to_caption

    unique = list(dict.fromkeys(texts))
    out: dict[str, Caption | None] = {t: None for t in unique}
    usable = [t for t in unique if not language_problem(t)]
    for text, doc in zip(usable, load_nlp(model).pipe(usable, batch_size=batch_size), strict=True):
        c = to_caption(doc)
        out[text] = c if c.nps else None
    return out


def built_with(folder: Path) -> str:
    """The --spacy-model a kgaug output folder was built with (its report's options), else the default."""
    try:
        return read_report(folder).get("options", {}).get("spacy_model") or DEFAULT_MODEL
    except (OSError, ValueError):
        return DEFAULT_MODEL


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path, help="a kgaug build output folder built from captions")
    ap.add_argument("--spacy-model", default=None,
                    help="spaCy pipeline (default: the table's, from report.json; else en_core_web_sm)")
    ap.add_argument("--examples", type=int, default=10, help="eligible captions without a swap to list, per type")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default=None, help="table name in the output (default: the folder's name)")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = ap.parse_args(argv)

    model = args.spacy_model or built_with(args.out_dir)
    rows = list(read_rows(args.out_dir, columns=["key", "captions", "hard_negatives"]))
    parses = parse_captions((t for r in rows for t in r["captions"] or []), model)
    res = count(rows, parses, args.examples, args.seed)
    name = args.name or args.out_dir.resolve().name
    report = {"table": name, "folder": str(args.out_dir),
              "options": {"spacy_model": model, "examples": args.examples, "seed": args.seed}, **res}
    print(markdown(name, res))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
