"""The knowledge graph (networkx): corpus counts, WordNet, ConceptNet and the lexicon, and the
questions negatives ask of it: is X a synonym of Y, what may replace X, how plausible is a fact.

Nodes are `obj:<name>`, `att:<name>`, `pred:<name>` (corpus and lexicon concepts) with a `count`.
Edge kinds: has_attribute / subject_of / object_of / co_occurs (corpus counts), synonym / is_a /
cohyponym / antonym (WordNet, lexicon), and ConceptNet relations as `cn:<Relation>` with a weight.
Counting during the stream uses Counters (fast); `finalize` turns them into the graph.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import networkx as nx

from kgaug import lexicon
from kgaug.scene_graph import SceneGraph
from kgaug.vgmeta import VGMeta
from kgaug.wordnet import WordNet

CORPUS_KINDS = ("has_attribute", "subject_of", "object_of", "co_occurs")
MAX_COOC_OBJECTS = 16  # per image: pairs grow quadratically, the first objects suffice for counts
COOC_CAP = 1_000_000  # distinct pairs kept in memory; beyond it, pairs seen once are dropped
WORDNET_VOCAB = 1000  # most frequent objects/attributes that get WordNet edges in the saved graph


def _sat(c: float, k: float = 2.0) -> float:
    return c / (c + k)


class KG:
    def __init__(self, wordnet: WordNet | None = None, vg: VGMeta | None = None) -> None:
        self.wn = wordnet or WordNet(enabled=False)
        self.vg = vg or VGMeta()
        self.obj = Counter()
        self.att = Counter()
        self.pred = Counter()
        self.obj_att = Counter()
        self.subj_pred = Counter()
        self.pred_obj = Counter()
        self.cooc = Counter()
        self.graph = nx.DiGraph()
        self.conceptnet_rows = 0
        self.cooc_prunes = 0
        self.conceptnet_skipped: Counter = Counter()
        self._cands: dict[tuple[str, str], tuple[str, ...]] = {}
        self._cooc_adj: dict[str, list[str]] | None = None
        self._att_adj: dict[str, list[str]] | None = None
        self._describable: dict[str, bool] = {}
        self._cn_cache: dict[tuple, list[str]] = {}
        self._att_keys: dict[str, frozenset] = {}
        self._keys: dict[str, tuple[frozenset, frozenset, frozenset]] = {}
        self._index: dict[str, tuple] = {}
        self._frequent: list[str] | None = None
        # Plausibility scores and per-object pools, memoised for pass 2 (counts are final by then;
        # `_forget` drops them if counts change again).
        self._p_att: dict[tuple[str, str], float] = {}
        self._p_rel: dict[tuple[str, str, str], float] = {}
        self._pools: dict[tuple[str, str], tuple] = {}
        self._editable: dict[tuple[str, str | None], bool] = {}

    def _forget(self) -> None:
        for memo in (self._p_att, self._p_rel, self._pools, self._editable, self._cands):
            memo.clear()
        self._cooc_adj = self._att_adj = self._frequent = None

    # -- counting -------------------------------------------------------------------------------
    def add_graph(self, g: SceneGraph) -> None:
        if self._p_att or self._cands or self._cooc_adj is not None:
            self._forget()
        names = {o.id: o.name for o in g.objects}
        self.obj.update([o.name for o in g.objects])
        for o in g.objects:
            if o.attributes:
                self.att.update(o.attributes)
                self.obj_att.update((o.name, a) for a in o.attributes)
        for r in g.relations:
            s, o = names.get(r.subject), names.get(r.object)
            if s is None or o is None:
                continue
            p = r.predicate
            self.pred[p] += 1
            self.subj_pred[s, p] += 1
            self.pred_obj[p, o] += 1
        uniq = sorted(set(list(names.values())[:MAX_COOC_OBJECTS]))
        self.cooc.update(itertools.combinations(uniq, 2))  # C-level counting
        if len(self.cooc) > COOC_CAP:  # bounded memory on full VG: rare pairs say little anyway
            self.cooc = Counter({k: n for k, n in self.cooc.items() if n > 1})
            self.cooc_prunes += 1

    # -- ConceptNet -----------------------------------------------------------------------------
    def add_conceptnet(self, path: Path) -> None:
        """Read the official assertions dump (TSV: uri, relation, start, end, json), English only,
        keeping edges that touch a corpus or lexicon concept (bounded by vocabulary, not file size)."""
        vocab = set(self.obj) | set(self.att) | set(lexicon.attribute_category())
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 4 or not parts[1].startswith("/r/"):
                    self.conceptnet_skipped["malformed row"] += 1
                    continue
                if not (parts[2].startswith("/c/en/") and parts[3].startswith("/c/en/")):
                    self.conceptnet_skipped["not English"] += 1
                    continue
                a = lexicon.clean(parts[2].split("/")[3])
                b = lexicon.clean(parts[3].split("/")[3])
                if not a or not b or a == b or (a not in vocab and b not in vocab):
                    continue
                weight = 1.0
                if len(parts) > 4:
                    try:
                        weight = float(json.loads(parts[4]).get("weight", 1.0))
                    except (ValueError, AttributeError):
                        weight = 1.0
                self.graph.add_edge(f"cn:{a}", f"cn:{b}", kind=f"cn:{parts[1][3:]}", weight=weight)
                self.conceptnet_rows += 1

    def _cn(self, word: str, kinds: tuple[str, ...]) -> list[str]:
        """ConceptNet neighbours of `word` by these relations (either direction)."""
        if not self.conceptnet_rows:
            return []
        key = (word, kinds)
        if key not in self._cn_cache:
            node = f"cn:{word}"
            out: list[str] = []
            if node in self.graph:
                out = [v[3:] for v, d in self.graph[node].items() if d.get("kind") in kinds]
                out += [u[3:] for u, _, d in self.graph.in_edges(node, data=True) if d.get("kind") in kinds]
            self._cn_cache[key] = sorted(set(out))
        return self._cn_cache[key]

    # -- sameness (never a valid replacement) ---------------------------------------------------
    def _object_keys(self, name: str) -> tuple[frozenset, frozenset, frozenset]:
        """(identity keys, own WordNet senses, WordNet ancestors) of an object name, cached."""
        k = self._keys.get(name)
        if k is None:
            keys = {("n", name), ("n", lexicon.singular(name)[0])}
            vs = self.vg.object_synset.get(name)
            if vs:
                keys.add(("vs", vs))
            va = self.vg.object_alias.get(name)
            if va is not None:
                keys.add(("va", va))
            forms = dict.fromkeys((name, lexicon.singular(name)[0]))  # "people" is also "person"
            senses = frozenset(s.name() for f in forms for s in self.wn.noun_synsets(f))
            keys |= {("wn", x) for x in senses}
            keys |= {("n", x) for x in self._cn(name, ("cn:Synonym", "cn:FormOf"))}
            top = frozenset(s.name() for f in forms for s in self.wn.noun_synsets(f)[:2])
            anc = frozenset().union(*(self.wn.ancestors(f) for f in forms))
            k = self._keys[name] = (frozenset(keys), top, anc)
        return k

    def object_index(self, name: str) -> tuple:
        """Identity keys of a name plus its own senses tagged ("sense", s): what Evidence indexes."""
        idx = self._index.get(name)
        if idx is None:
            keys, top, _anc = self._object_keys(name)
            idx = self._index[name] = (*keys, *(("sense", t) for t in top))
        return idx

    def same_object(self, a: str, b: str) -> bool:
        """Could `b` name what `a` names: same word, synonym (VG synset/alias, WordNet, ConceptNet)
        or a kind of it / a kind it is (dog vs animal)."""
        if a == b:
            return True
        ka, ta, aa = self._object_keys(a)
        kb, tb, ab = self._object_keys(b)
        if ka & kb or ta & ab or tb & aa:
            return True
        return b in self._cn(a, ("cn:IsA",)) or a in self._cn(b, ("cn:IsA",))

    def attribute_keys(self, a: str) -> frozenset:
        """Identity keys of an attribute: two attributes sharing one are the same (grey/gray)."""
        k = self._att_keys.get(a)
        if k is None:
            keys = {("n", a)} | {("n", x) for x in lexicon.attribute_same().get(a, ())}
            vs = self.vg.attribute_synset.get(a)
            if vs:
                keys.add(("vs", vs))
            keys |= {("n", x) for x in self.wn.synonyms(a, "a")}
            keys |= {("n", x) for x in self._cn(a, ("cn:Synonym", "cn:FormOf", "cn:SimilarTo"))}
            k = self._att_keys[a] = frozenset(keys)
        return k

    def same_attribute(self, a: str, b: str) -> bool:
        """Same word, a synonym of the other (lexicon, WordNet, ConceptNet), or one VG synset."""
        if a == b:
            return True
        ka, kb = self.attribute_keys(a), self.attribute_keys(b)
        if ("n", b) in ka or ("n", a) in kb:
            return True
        va = self.vg.attribute_synset.get(a)
        return va is not None and va == self.vg.attribute_synset.get(b)

    def same_predicate(self, a: str, b: str) -> bool:
        if a == b or b in lexicon.predicate_same().get(a, ()) or self.vg.same_predicate(a, b):
            return True
        # "sitting on" states "on": a verb + preposition predicate is the same as its bare preposition.
        wa, wb = a.split(" "), b.split(" ")
        return (len(wa) > len(wb) and wa[-len(wb):] == wb) or (len(wb) > len(wa) and wb[-len(wa):] == wa)

    def describable(self, a: str) -> bool:
        """An attribute that can stand before a noun ('a red car'; not 'a here car', 'an using man')."""
        ok = self._describable.get(a)
        if ok is None:
            if a in lexicon.attribute_category():
                ok = True
            elif " " in a or a in lexicon.not_prenominal() or not a.isalpha():
                ok = False
            elif self.wn.enabled:
                ok = bool(self.wn.wn.synsets(a, pos="a") or self.wn.wn.synsets(a, pos="s")) or a.endswith("ed")
            else:
                ok = a.endswith(("ed", "en", "ful", "ous", "ic", "al", "less", "y"))
            self._describable[a] = ok
        return ok

    # -- replacement candidates -----------------------------------------------------------------
    def object_candidates(self, o: str) -> tuple[str, ...]:
        key = ("obj", o)
        if key not in self._cands:
            cands: dict[str, None] = {}
            for c in self.wn.cohyponyms(o):
                if self.obj[c] > 0:
                    cands[c] = None
            for c in self._cn(o, ("cn:DistinctFrom", "cn:Antonym")):
                cands[c] = None
            for parent in self._cn(o, ("cn:IsA",)):
                for c in self._cn(parent, ("cn:IsA",)):
                    cands[c] = None
            if len(cands) < 3:  # KG neighbours: objects seen with this one, of the same WordNet kind
                lex = self.wn.lexname(o)
                for c in self._cooc_neighbours().get(o, ())[:40]:
                    if not lex or self.wn.lexname(c) == lex:
                        cands[c] = None
            self._cands[key] = tuple(c for c in cands if c != o and not lexicon.is_not_object(c)
                                     and not self.same_object(o, c))[:30]
        return self._cands[key]

    def _cooc_neighbours(self) -> dict[str, list[str]]:
        if self._cooc_adj is None:
            adj: dict[str, list[tuple[int, str]]] = {}
            for (a, b), n in self.cooc.items():
                adj.setdefault(a, []).append((-n, b))
                adj.setdefault(b, []).append((-n, a))
            self._cooc_adj = {k: [c for _, c in sorted(v)] for k, v in adj.items()}
        return self._cooc_adj

    def seen_attributes(self, o: str) -> list[str]:
        """Attributes the corpus shows on this object, most frequent first."""
        if self._att_adj is None:
            adj: dict[str, list[tuple[int, str]]] = {}
            for (obj, a), n in self.obj_att.items():
                adj.setdefault(obj, []).append((-n, a))
            self._att_adj = {k: [a for _, a in sorted(v)[:30]] for k, v in adj.items()}
        return self._att_adj.get(o, [])

    def addable_attributes(self, o: str, extra: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        """(attribute, category) that add_att may put on `o`: describable ones the corpus shows on it,
        then `extra`; known category, not a count, allowed on this object; first occurrence kept."""
        key = (o, extra)
        pool = self._pools.get(key)
        if pool is None:
            out: dict[str, str] = {}
            for a in [a for a in self.seen_attributes(o) if self.describable(a)] + list(extra):
                cat = self.attribute_category(a)
                if a in out or cat is None or cat == "count" or not self.editable_category(o, cat):
                    continue
                out[a] = cat
            pool = self._pools[key] = tuple(out.items())
        return pool

    def cooccurring(self, o: str) -> list[str]:
        """Objects seen in the same images as `o`, most often first; else the most frequent objects."""
        neigh = self._cooc_neighbours().get(o)
        if neigh:
            return neigh
        if self._frequent is None:
            self._frequent = [n for n, _ in sorted(self.obj.items(), key=lambda kv: (-kv[1], kv[0]))[:50]]
        return self._frequent

    def attribute_candidates(self, a: str) -> tuple[str, ...]:
        key = ("att", a)
        if key not in self._cands:
            cands: dict[str, None] = {}
            for c in lexicon.attribute_antonyms().get(a, ()):
                cands[c] = None
            for c in self.wn.antonyms(a, "a"):
                cands[c] = None
            cat = lexicon.attribute_category().get(a)
            if cat in lexicon.load("attributes")["exclusive"]:
                for c in lexicon.load("attributes")["categories"][cat]:
                    cands[c] = None
            self._cands[key] = tuple(c for c in cands if not self.same_attribute(a, c))
        return self._cands[key]

    def predicate_candidates(self, p: str) -> tuple[str, ...]:
        key = ("pred", p)
        if key not in self._cands:
            rel = lexicon.load("relations")
            cands: dict[str, None] = dict.fromkeys(lexicon.relation_antonyms().get(p, ()))
            pool = rel["spatial"] if p in rel["spatial"] or p not in rel["verbs"] else rel["verbs"]
            if p in rel["spatial"] or p in rel["verbs"] or self.pred[p] > 0:
                cands.update(dict.fromkeys(pool))
            self._cands[key] = tuple(c for c in cands if not self.same_predicate(p, c))
        return self._cands[key]

    def attribute_category(self, a: str) -> str | None:
        return lexicon.attribute_category().get(a)

    def is_person(self, o: str) -> bool:
        return o in lexicon.sensitive_words() or self.wn.lexname(o) == "noun.person"

    def editable_category(self, o: str, cat: str | None) -> bool:
        """May an attribute of this category be added to / replaced on this object?"""
        ok = self._editable.get((o, cat))
        if ok is None:
            ok = self._editable[o, cat] = not (cat in lexicon.load("attributes")["not_on_people"]
                                               and self.is_person(o))
        return ok

    # -- plausibility in [0, 1] -----------------------------------------------------------------
    def plausibility_att(self, o: str, a: str) -> float:
        v = self._p_att.get((o, a))
        if v is None:
            v = 0.7 * _sat(self.obj_att[o, a]) + 0.2 * _sat(self.att[a], 10)
            if a in self._cn(o, ("cn:HasProperty",)):
                v += 0.3
            v = self._p_att[o, a] = min(1.0, v)
        return v

    def plausibility_rel(self, s: str, p: str, o: str) -> float:
        v = self._p_rel.get((s, p, o))
        if v is None:
            v = 0.4 * _sat(self.subj_pred[s, p]) + 0.4 * _sat(self.pred_obj[p, o]) + 0.2 * _sat(self.pred[p], 10)
            if p in ("on", "in", "on top of", "inside") and o in self._cn(s, ("cn:AtLocation",)):
                v += 0.3
            v = self._p_rel[s, p, o] = min(1.0, v)
        return v

    def plausibility_cooc(self, o: str, others: list[str]) -> float:
        if not others:
            return 0.5 * _sat(self.obj[o], 10)
        cooc = self.cooc  # keys are sorted pairs
        best = 0
        for x in others:
            n = cooc.get((o, x) if o < x else (x, o), 0)
            if n > best:
                best = n
        return min(1.0, 0.7 * _sat(best) + 0.3 * _sat(self.obj[o], 10))

    # -- graph and persistence ------------------------------------------------------------------
    def finalize(self) -> nx.DiGraph:
        self._forget()
        for memo in (self._cn_cache, self._keys, self._index, self._att_keys, self._describable):
            memo.clear()
        g = self.graph
        for name, n in self.obj.items():
            g.add_node(f"obj:{name}", count=n)
        for name, n in self.att.items():
            g.add_node(f"att:{name}", count=n)
        for name, n in self.pred.items():
            g.add_node(f"pred:{name}", count=n)
        for (o, a), n in self.obj_att.items():
            g.add_edge(f"obj:{o}", f"att:{a}", kind="has_attribute", count=n)
        for (s, p), n in self.subj_pred.items():
            g.add_edge(f"obj:{s}", f"pred:{p}", kind="subject_of", count=n)
        for (p, o), n in self.pred_obj.items():
            g.add_edge(f"pred:{p}", f"obj:{o}", kind="object_of", count=n)
        for (a, b), n in self.cooc.items():
            g.add_edge(f"obj:{a}", f"obj:{b}", kind="co_occurs", count=n)
        for a, b in lexicon.load("relations")["antonyms"]:
            g.add_edge(f"pred:{a}", f"pred:{b}", kind="antonym", source="lexicon")
        for cat, words in lexicon.load("attributes")["categories"].items():
            for w in words:
                g.add_node(f"att:{w}", category=cat, count=self.att[w])
        if self.wn.enabled:
            for name, _ in self.obj.most_common(WORDNET_VOCAB):
                for syn in sorted(self.wn.synonyms(name, "n")):
                    if syn in self.obj:
                        g.add_edge(f"obj:{name}", f"obj:{syn}", kind="synonym", source="wordnet")
                for c in self.wn.cohyponyms(name):
                    if c in self.obj:
                        g.add_edge(f"obj:{name}", f"obj:{c}", kind="cohyponym", source="wordnet")
                for h in self.wn.hypernyms(name):
                    g.add_edge(f"obj:{name}", f"obj:{h}" if h in self.obj else f"wn:{h}", kind="is_a",
                               source="wordnet")
            for name, _ in self.att.most_common(WORDNET_VOCAB):
                for ant in self.wn.antonyms(name, "a"):
                    g.add_edge(f"att:{name}", f"att:{ant}", kind="antonym", source="wordnet")
        return g

    def save(self, path: Path) -> None:
        data = nx.node_link_data(self.graph, edges="edges")
        data["nodes"] = sorted(data["nodes"], key=lambda d: d["id"])
        data["edges"] = sorted(data["edges"], key=lambda d: (d["source"], d["target"]))
        tmp = Path(str(path) + ".tmp")
        tmp.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")))
        tmp.replace(path)

    def load_counts(self, path: Path) -> None:
        """Merge a saved kg.json (a previous run) into this one: corpus counts and other edges."""
        data = json.loads(Path(path).read_text())
        g = nx.node_link_graph(data, directed=True, edges="edges")
        for u, v, d in g.edges(data=True):
            kind, n = d.get("kind"), d.get("count", 0)
            a, b = u.split(":", 1)[1], v.split(":", 1)[1]
            if kind == "has_attribute":
                self.obj_att[a, b] += n
            elif kind == "subject_of":
                self.subj_pred[a, b] += n
            elif kind == "object_of":
                self.pred_obj[a, b] += n
            elif kind == "co_occurs":
                self.cooc[a, b] += n
            elif str(kind).startswith("cn:"):
                self.graph.add_edge(u, v, **d)
        for node, d in g.nodes(data=True):
            kind, name = node.split(":", 1)
            target = {"obj": self.obj, "att": self.att, "pred": self.pred}.get(kind)
            if target is not None and d.get("count"):
                target[name] += d["count"]
