"""clusterbuild.pipeline: choices the pipeline makes from its inputs."""

from __future__ import annotations

import json

import pytest


def _graph_row(key, objects, relations=(), captions=("",)):
    objs = [{"id": str(i), "name": n, "attributes": list(a)} for i, (n, a) in enumerate(objects)]
    return {"key": key, "captions": list(captions),
            "scene_graph": json.dumps({"objects": objs, "relations": [list(r) for r in relations]})}


def test_cluster_space_auto_follows_the_share_of_rows_with_graphs():
    from clusterbuild import pipeline

    g = [_graph_row(str(i), [("cube", ["red"])]) for i in range(10)]
    assert pipeline.cluster_space("auto", g) == "graph"
    assert pipeline.cluster_space("auto", g[:8] + [{"key": "x", "captions": ["a"]}] * 2) == "image"
    assert pipeline.cluster_space("image", g) == "image"
    with pytest.raises(ValueError, match="--cluster-on"):
        pipeline.cluster_space("pixels", g)
