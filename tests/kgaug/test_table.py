"""kgaug.table: rows as tuples make the table the row dicts make."""

from __future__ import annotations

from pathlib import Path


def test_rows_as_tuples_make_the_table_the_row_dicts_make(tmp_path: Path):
    """Pass 2 builds its Arrow tables from row tuples: the same table (and parquet bytes) as
    `pa.Table.from_pylist` of the row dicts; a negative's struct is `Negative.row()` in schema order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kgaug.negatives import Negative
    from kgaug.table import HARD_NEGATIVE, TABLE_SCHEMA, table_from_rows

    n = Negative("replace_att", "a blue dog.", "black", "blue", "black(dog)", 1, "a black dog.")
    assert list(n.row()) == HARD_NEGATIVE.names
    rows = [("vg_1", None, "vg", [], [("a dog.", ["dog"], "object")], [tuple(n.row().values())], "{}", [], None),
            ("vg_2", "im.jpg", "vg", ["a cat", "a mat"], [], [], '{"objects":[]}', [("gender", "female")], "cc"),
            ("vg_3", None, "vg", [], [("a b.", [], "dense"), ("c.", ["c", "d"], "x")], [], "", [], "")]
    names = TABLE_SCHEMA.names
    for chunk in (rows, rows[1:2], rows[2:], []):
        dicts = [dict(zip(names, r)) for r in chunk]
        for d in dicts:
            d["pseudo_captions"] = [dict(zip(["text", "facts", "style"], p)) for p in d["pseudo_captions"]]
            d["hard_negatives"] = [dict(zip(HARD_NEGATIVE.names, x)) for x in d["hard_negatives"]]
        want, got = pa.Table.from_pylist(dicts, schema=TABLE_SCHEMA), table_from_rows(chunk)
        assert got.equals(want)
        pq.write_table(want, tmp_path / "want.parquet")
        pq.write_table(got, tmp_path / "got.parquet")
        assert (tmp_path / "got.parquet").read_bytes() == (tmp_path / "want.parquet").read_bytes()
