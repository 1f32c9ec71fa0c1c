"""The KG as a networkx graph and its file, kg.json: `finalize` puts the corpus counts and the outside
knowledge into the graph, `save` writes it (sorted: the same KG gives the same bytes), `load_counts`
adds a saved one's counts and ConceptNet edges to a KG being built.

Nodes are `obj:<name>`, `att:<name>`, `pred:<name>` (corpus and lexicon concepts) with a `count`.
Edge kinds: has_attribute / subject_of / object_of / co_occurs (corpus counts), synonym / is_a /
cohyponym / antonym (WordNet, lexicon), and ConceptNet relations as `cn:<Relation>` with a weight.
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx

from kgaug.kg.counts import CorpusCounts
from kgaug.kg.loaders import add_lexicon_edges, add_wordnet_edges
from kgaug.wordnet import WordNet
from kgclip.atomic import atomic_write_text


def finalize(g: nx.DiGraph, counts: CorpusCounts, wn: WordNet) -> nx.DiGraph:
    """Add the corpus counts to `g` (nodes with their count, count edges), then the lexicon's and
    (when enabled) WordNet's edges."""
    for name, n in counts.obj.items():
        g.add_node(f"obj:{name}", count=n)
    for name, n in counts.att.items():
        g.add_node(f"att:{name}", count=n)
    for name, n in counts.pred.items():
        g.add_node(f"pred:{name}", count=n)
    for (o, a), n in counts.obj_att.items():
        g.add_edge(f"obj:{o}", f"att:{a}", kind="has_attribute", count=n)
    for (s, p), n in counts.subj_pred.items():
        g.add_edge(f"obj:{s}", f"pred:{p}", kind="subject_of", count=n)
    for (p, o), n in counts.pred_obj.items():
        g.add_edge(f"pred:{p}", f"obj:{o}", kind="object_of", count=n)
    for (a, b), n in counts.cooc.items():
        g.add_edge(f"obj:{a}", f"obj:{b}", kind="co_occurs", count=n)
    add_lexicon_edges(g, counts.att)
    if wn.enabled:
        add_wordnet_edges(g, wn, counts.obj, counts.att)
    return g


def save(g: nx.DiGraph, path: Path) -> None:
    """Write `g` as node-link JSON, nodes sorted by id and edges by (source, target)."""
    data = nx.node_link_data(g, edges="edges")
    data["nodes"] = sorted(data["nodes"], key=lambda d: d["id"])
    data["edges"] = sorted(data["edges"], key=lambda d: (d["source"], d["target"]))
    atomic_write_text(path, json.dumps(data, sort_keys=True, separators=(",", ":")))


def load_counts(path: Path, counts: CorpusCounts, g: nx.DiGraph) -> None:
    """Merge a saved kg.json (a previous run) into `counts` (corpus counts) and `g` (ConceptNet
    edges); other edges (lexicon, WordNet) are made again by `finalize`."""
    data = json.loads(Path(path).read_text())
    saved = nx.node_link_graph(data, directed=True, edges="edges")
    for u, v, d in saved.edges(data=True):
        kind, n = d.get("kind"), d.get("count", 0)
        a, b = u.split(":", 1)[1], v.split(":", 1)[1]
        if kind == "has_attribute":
            counts.obj_att[a, b] += n
        elif kind == "subject_of":
            counts.subj_pred[a, b] += n
        elif kind == "object_of":
            counts.pred_obj[a, b] += n
        elif kind == "co_occurs":
            counts.cooc[a, b] += n
        elif str(kind).startswith("cn:"):
            g.add_edge(u, v, **d)
    for node, d in saved.nodes(data=True):
        kind, name = node.split(":", 1)
        target = {"obj": counts.obj, "att": counts.att, "pred": counts.pred}.get(kind)
        if target is not None and d.get("count"):
            target[name] += d["count"]
