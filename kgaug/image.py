"""What `kgaug build` does to one image: the per-image steps any engine runs (kgaug/engine/).

Pass 1, `keep`: an image's record (and its parsed captions, for caption sources) is counted into the
KG and reduced to the `SpillRecord` pass 2 reads. Pass 2, `table_row`: a spilled image becomes one
table row: pseudo-captions from its graph, hard negatives of its captions, checked against its
evidence. Both are functions of the image and the KG alone (randomness seeded by (seed, key)), so
any split of the images over processes or machines gives the same rows.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from kgaug import lexicon
from kgaug.captions import Caption, caption_from_dict, caption_to_dict, pseudo_captions
from kgaug.engine.spill import SpillRecord
from kgaug.evidence import Evidence
from kgaug.fluency import fold
from kgaug.kg import KG
from kgaug.negatives import Generator
from kgaug.report import Report
from kgaug.scene_graph import O_NAME, O_PLURAL, GraphBuilder, SceneGraph, packed_json
from kgaug.sources import Record

# -- pass 1 ---------------------------------------------------------------------------------------


def coreferent_names(captions: list[Caption]) -> dict[str, str]:
    """name -> the name it is merged into: one entity that an image's captions each name differently
    ("Young toddler sitting on toilet ..." and "A young boy sittingon a toilette seat ..." are one child,
    not "a young boy and a young toddler"). Only where every name the captions use from the lexicon's
    `coreferent` groups falls in one group, each caption names at most one of them, and always singular;
    the name most captions use is kept (ties: the group's order, most specific first)."""
    groups = lexicon.coreferent_groups()
    known = {n for g in groups for n in g}
    per_caption = []
    for c in captions:
        names = {np.name for np in c.nps if np.name in known}
        if len(names) > 1 or any(np.plural for np in c.nps if np.name in names):
            return {}
        per_caption.append(names)
    used = set().union(*per_caption) if per_caption else set()
    if len(used) < 2:
        return {}
    group = next((g for g in groups if used <= set(g)), None)
    if group is None:
        return {}
    votes = {n: sum(n in names for names in per_caption) for n in used}
    keep = min(used, key=lambda n: (-votes[n], group.index(n)))
    return {n: keep for n in used if n != keep}


def merge_caption_graphs(captions: list[Caption]) -> SceneGraph:
    """One graph for an image from its parsed captions: objects merged by name, and the names of one
    entity (`coreferent_names`) into one object that keeps each surface name."""
    same = coreferent_names(captions)
    merged = [next(iter(same.values())), *sorted(same)] if same else []  # the kept name first
    b = GraphBuilder()
    for c in captions:
        for np in c.nps:
            oid = same.get(np.name, np.name)
            names = merged if merged and oid == merged[0] else [lexicon.inflect_like(np.name, np.plural)]
            b.add_object(oid, names, None, [a for a, _ in np.atts])
        for r in c.rels:
            b.add_relation(same.get(c.nps[r.subj].name, c.nps[r.subj].name), r.pred,
                           same.get(c.nps[r.obj].name, c.nps[r.obj].name))
    return b.graph


class CaptionParser:
    """Batches caption records through spaCy (one nlp.pipe call per batch): each record's usable
    captions parsed into `Caption`s; captions in another language or without an object are skipped
    with their reason in `report`."""

    def __init__(self, model: str, batch_size: int, report: Report) -> None:
        from kgaug.parse import load_nlp

        self.nlp = load_nlp(model)
        self.model = model
        self.batch_size = batch_size
        self.report = report

    def run(self, records: list[Record]) -> Iterator[tuple[Record, list[Caption]]]:
        from kgaug.parse import language_problem, to_caption

        texts, owners = [], []
        for i, rec in enumerate(records):
            for t in rec.captions:
                why = language_problem(t)
                if why:
                    self.report.skip(f"{rec.key} caption {t[:60]!r}", why)
                    continue
                texts.append(t)
                owners.append(i)
        parsed: list[list[Caption]] = [[] for _ in records]
        for owner, doc in zip(owners, self.nlp.pipe(texts, batch_size=self.batch_size), strict=True):
            c = to_caption(doc)
            self.report.counts["captions_parsed"] += 1
            if not c.nps:
                self.report.skip(f"{records[owner].key} caption {doc.text[:60]!r}",
                                 "caption does not parse (no object found)")
                continue
            parsed[owner].append(c)
        for rec, caps in zip(records, parsed, strict=True):
            yield rec, caps


# name -> its surface form (`inflect_like`) if that carries sensitive tags, else None; singular and plural
_TAGGED: tuple[dict[str, str | None], dict[str, str | None]] = ({}, {})
_TAGGED_SIZE = 1 << 17  # names remembered (then it starts afresh)
_UNSEEN = object()


def _tagged_surfaces(objects: tuple) -> list[str]:
    """The surface forms of these objects (`SceneGraph.to_tuples` form) that carry sensitive tags. A text
    without tags adds nothing to `sensitive_tags`, and most object names have none: each name's answer is
    remembered, so an image asks the lexicon only about what does carry tags."""
    out = []
    for o in objects:
        name, plural = o[O_NAME], o[O_PLURAL]
        memo = _TAGGED[1] if plural else _TAGGED[0]
        s = memo.get(name, _UNSEEN)
        if s is _UNSEEN:
            if len(memo) >= _TAGGED_SIZE:
                memo.clear()
            s = lexicon.inflect_like(name, plural)
            s = memo[name] = s if lexicon.sensitive_tags([s]) else None
        if s is not None:
            out.append(s)
    return out


def keep(rec: Record, caps: list[Caption] | None, kg: KG, report: Report, prune: bool = True) -> SpillRecord | None:
    """Pass 1 for one image: count its graph into the KG and return what pass 2 needs of it (None:
    skipped, with its reason in the report). `caps`: its parsed captions (caption sources), whose
    merged graph becomes the image's graph."""
    if caps is not None:
        if not caps:
            report.skip(f"{rec.key}", "no usable caption (all rejected)")
            return None
        rec.graph = merge_caption_graphs(caps)
        rec.captions = [c.text for c in caps]
    for p in rec.problems:
        report.problem(rec.key, p)
    # The graph's `to_tuples` form is what is counted and spilled (a GraphBuilder's graph holds it as is).
    graph = rec.graph.to_tuples() if rec.graph is not None else None
    if graph is None or (not graph[0] and not rec.captions):
        report.skip(rec.key, "image without objects or captions")
        return None
    kg.add_graph(rec.graph, prune)
    words = sorted({w for c in rec.captions for w in lexicon.clean(c).split(" ")}) if caps else []
    tags = lexicon.sensitive_tags(rec.captions + _tagged_surfaces(graph[0]))
    tags.update(rec.sensitive)
    report.counts["images"] += 1
    if not rec.image:
        report.counts["rows_without_image"] += 1
    return SpillRecord(rec.key, rec.source, rec.image, rec.captions, graph,
                       [caption_to_dict(c) for c in caps or []], words, tags, rec.license)


# -- pass 2 ---------------------------------------------------------------------------------------


def object_view(graph: SceneGraph) -> SceneGraph:
    """The graph without what `lexicon.is_not_object` names (nor relations to it): what pseudo-captions
    may state."""
    is_not_object = lexicon.is_not_object
    objs = [o for o in graph.objects if not is_not_object(o.name)]
    if len(objs) == len(graph.objects):
        return graph
    kept = {o.id for o in objs}
    return SceneGraph(objs, [r for r in graph.relations if r.subject in kept and r.object in kept])


def image_inputs(line: SpillRecord, kg: KG, cfg, rng: random.Random):
    """An image's graph, pseudo-captions, parsed human captions and evidence."""
    graph = SceneGraph.from_tuples(line.graph)
    # Only attributes the KG finds describable (a subset of what captions.describable accepts, so
    # the captions' own test would change nothing: tests/kgaug/test_kg_queries.py checks it).
    pseudo = pseudo_captions(object_view(graph), cfg.pseudo_captions, rng, kg.describable, kg.predicative)
    human = [caption_from_dict(d) for d in line.parsed]
    return graph, pseudo, human, Evidence(graph, kg, set(line.words))


def table_row(line: SpillRecord, kg: KG, gen: Generator, cfg, report: Report) -> tuple:
    """Pass 2 for one image: its table row, as `table_from_rows` takes it (`TABLE_SCHEMA` column order)."""
    rng = random.Random(f"{cfg.seed}:{line.key}")
    graph, pseudo, human, ev = image_inputs(line, kg, cfg, rng)
    if gen.lms:
        gen.lm = gen.lms[fold(line.key)]
    negs = gen.for_image(human + pseudo, ev, rng) if cfg.negatives_per_type > 0 else []
    report.counts["pseudo_captions"] += len(pseudo)
    report.counts["hard_negatives"] += len(negs)
    if graph.objects:
        report.counts["images_with_objects"] += 1
        report.counts["images_with_pseudo_captions"] += bool(pseudo)
    report.negatives.update([n.type for n in negs])
    return (
        line.key, line.image, line.source, line.captions,
        [(c.text, c.facts(), c.style) for c in pseudo],
        [n.row_values() for n in negs],
        packed_json(*line.graph),  # = graph.to_json(): `graph` was made from this form
        sorted(line.sensitive.items()),
        line.license,
    )
