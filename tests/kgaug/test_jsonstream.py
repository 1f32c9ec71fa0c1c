"""kgaug.jsonstream: streaming JSON arrays in bounded memory, resynchronising after a bad item."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgaug.jsonstream import Malformed, NotAnArray, iter_array


def test_iter_array_streams_across_chunks_and_resyncs(tmp_path: Path):
    p = tmp_path / "a.json"
    items = [{"image_id": i, "objects": [{"names": ["x" * 40]}], "n": 123456789} for i in range(60)]
    p.write_text(json.dumps(items))
    assert list(iter_array(p, chunk=7)) == items
    p.write_text('[{"image_id": 1, "o": [{"a": 1}]}, {"image_id": 2, "o": [{"a": 1}, BAD]}, {"image_id": 3},'
                 ' {"image_id": 4} {"image_id": 5}, {"image_id": 6')
    out = list(iter_array(p, lambda x: isinstance(x, dict) and "image_id" in x, chunk=5))
    ids = [x["image_id"] for x in out if isinstance(x, dict)]
    bad = [x for x in out if isinstance(x, Malformed)]
    assert ids == [1, 3, 4, 5]
    assert len(bad) == 3 and "truncated" not in bad[0].reason
    p.write_text('{"not": "an array"}')
    with pytest.raises(NotAnArray):
        list(iter_array(p))
