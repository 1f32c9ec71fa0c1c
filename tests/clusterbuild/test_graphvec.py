"""clusterbuild.graphvec: scene-graph word vectors for `--cluster-on graph`."""

from __future__ import annotations

import json

import numpy as np


def _graph_row(key, objects, relations=(), captions=("",)):
    objs = [{"id": str(i), "name": n, "attributes": list(a)} for i, (n, a) in enumerate(objects)]
    return {"key": key, "captions": list(captions),
            "scene_graph": json.dumps({"objects": objs, "relations": [list(r) for r in relations]})}


def test_graph_vectors_group_the_same_words_whatever_their_binding_or_order():
    from clusterbuild import graphvec

    rows = [_graph_row("a", [("cube", ["red"]), ("ball", ["blue"])], [("0", "left of", "1")]),
            _graph_row("b", [("ball", ["blue"]), ("cube", ["red"])], [("0", "left of", "1")]),  # reversed
            _graph_row("c", [("cube", ["blue"]), ("ball", ["red"])], [("0", "left of", "1")]),  # swapped colours
            _graph_row("d", [("cube", ["green"]), ("ball", ["blue"])]),
            {"key": "e", "captions": ["A red cube and a blue ball."], "scene_graph": ""}]  # no graph: caption words
    x = graphvec.graph_vectors(rows, dim=64)
    assert x.shape == (5, 64) and np.allclose(np.linalg.norm(x, axis=1), 1.0)
    assert np.allclose(x[0], x[1]) and np.allclose(x[0], x[2]) and np.allclose(x[0], x[4])
    assert float(x[0] @ x[3]) < 0.99
    assert graphvec.distinct_rows(x) == 2 and graphvec.has_graph(rows[0]) and not graphvec.has_graph(rows[4])
    assert np.array_equal(graphvec.graph_vectors(rows, dim=64), x)  # deterministic (crc32 buckets)
