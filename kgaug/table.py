"""The stage-1 artifact: the schema of the `kgaug build` parquet table, and its reader.

`clusterbuild` reads a kgaug output folder only through `read_rows` / `TABLE_SCHEMA`, so the two
stages agree on one definition. Layout of an output folder:

    DIR/table/part-NNNNN.parquet   rows, one per image (readable with pyarrow.dataset)
    DIR/report.json                counts, and every skip/rejection with its reason
    DIR/kg.*                       the knowledge graph, saved for reuse
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import accumulate, chain
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

TABLE_DIR = "table"
REPORT_FILE = "report.json"
PART_PATTERN = "part-{index:05d}.parquet"

PSEUDO_CAPTION = pa.struct([
    ("text", pa.string()),
    ("facts", pa.list_(pa.string())),  # the graph facts the text states, e.g. "black(dog)", "on(dog,couch)"
    ("style", pa.string()),  # attribute | relation | dense
])
HARD_NEGATIVE = pa.struct([
    ("type", pa.string()),  # kgclip.vocab.NEGATIVE_TYPES
    ("text", pa.string()),
    ("from", pa.string()),  # what changed ...
    ("to", pa.string()),  # ... into what
    ("fact", pa.string()),  # the true fact that was changed (or the fact added, for add_*)
    ("plausibility", pa.float64()),  # KG score in [0, 1]; higher = more plausible
    ("caption", pa.string()),  # the true caption (human or pseudo) that was edited
])

TABLE_SCHEMA = pa.schema([
    ("key", pa.string()),  # <source>_<source id>, no dots
    ("image", pa.string()),  # path to the image file, or null
    ("source", pa.string()),  # vg | coco | captions | webdataset | synthetic
    ("captions", pa.list_(pa.string())),  # human captions
    ("pseudo_captions", pa.list_(PSEUDO_CAPTION)),
    ("hard_negatives", pa.list_(HARD_NEGATIVE)),
    ("scene_graph", pa.string()),  # compact JSON: {"objects": [...], "relations": [...]}
    ("sensitive", pa.map_(pa.string(), pa.string())),  # e.g. {"gender": "female"}; may be empty
    ("license", pa.string()),
])

# `kgaug build --rewrite ollama` tables only (a table built without it keeps the schema above, byte for
# byte): every pseudo-caption and hard negative also says who wrote its text, "rules" or "llm", and the
# model. Readers take a missing `origin` as "rules"; clusterbuild and train read the fields above only.
ORIGIN_FIELDS = [("origin", pa.string()), ("model", pa.string())]
PSEUDO_CAPTION_LLM = pa.struct([*PSEUDO_CAPTION, *ORIGIN_FIELDS])
HARD_NEGATIVE_LLM = pa.struct([*HARD_NEGATIVE, *ORIGIN_FIELDS])
TABLE_SCHEMA_LLM = pa.schema([
    pa.field(f.name, pa.list_(PSEUDO_CAPTION_LLM)) if f.name == "pseudo_captions"
    else pa.field(f.name, pa.list_(HARD_NEGATIVE_LLM)) if f.name == "hard_negatives" else f
    for f in TABLE_SCHEMA
])


def table_from_rows(rows: list[tuple]) -> pa.Table:
    """A table of rows given as tuples in `TABLE_SCHEMA` column order (a struct as the tuple of its
    fields' values, a map as (key, value) pairs): the same table as `pa.Table.from_pylist` of the row
    dicts, built a column at a time with no dict per row and per struct (about half the cost)."""
    columns = list(zip(*rows)) if rows else [()] * len(TABLE_SCHEMA)
    return pa.Table.from_arrays([_array(c, f.type) for c, f in zip(columns, TABLE_SCHEMA)], schema=TABLE_SCHEMA)


def _array(values, type_: pa.DataType) -> pa.Array:
    if pa.types.is_list(type_) and pa.types.is_struct(type_.value_type):
        # A list of structs as one flat array per struct field (converting a tuple per struct costs more).
        structs = type_.value_type
        items = list(chain.from_iterable(values))
        fields = list(zip(*items)) if items else [()] * structs.num_fields
        offsets = pa.array([0, *accumulate(map(len, values))], pa.int32())
        return pa.ListArray.from_arrays(offsets, pa.StructArray.from_arrays(
            [pa.array(v, f.type) for v, f in zip(fields, structs)], fields=list(structs)))
    return pa.array(values, type_)


def is_kgaug_output(folder: Path) -> bool:
    folder = Path(folder)
    return (folder / TABLE_DIR).is_dir() and any((folder / TABLE_DIR).glob("*.parquet"))


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    s = row.get("sensitive")
    if isinstance(s, list):  # pyarrow gives maps as [(k, v), ...]
        row["sensitive"] = dict(s)
    elif s is None:
        row["sensitive"] = {}
    return row


def read_rows(folder: Path, columns: list[str] | None = None, batch_size: int = 1024) -> Iterator[dict[str, Any]]:
    """Rows of a kgaug output folder in key order of the files, as plain Python dicts (streamed)."""
    import pyarrow.dataset as ds

    folder = Path(folder)
    if not is_kgaug_output(folder):
        raise FileNotFoundError(f"{folder} is not a kgaug build output (no {TABLE_DIR}/*.parquet)")
    dataset = ds.dataset(str(folder / TABLE_DIR), format="parquet")
    for batch in dataset.to_batches(columns=columns, batch_size=batch_size):
        for row in batch.to_pylist():
            yield _plain(row)


def read_report(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / REPORT_FILE).read_text())


class PartWriter:
    """Arrow tables (any number of rows each) -> part-NNNNN.parquet files of `rows_per_part` rows,
    written in row groups of ROW_GROUP rows so memory does not grow with the part size. The row
    groups are cut at the same rows however the input tables are sized, and each is written from
    one contiguous table, so the file bytes do not depend on the chunking."""

    ROW_GROUP = 1024

    def __init__(self, folder: Path, rows_per_part: int) -> None:
        self.folder, self.rows_per_part = folder, rows_per_part
        self.part, self.in_part = 0, 0
        self.buf: list[pa.Table] = []
        self.buffered = 0
        self.writer: pq.ParquetWriter | None = None

    def _flush(self) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.folder / PART_PATTERN.format(index=self.part), TABLE_SCHEMA)
        table = pa.concat_tables(self.buf).combine_chunks() if self.buf else TABLE_SCHEMA.empty_table()
        self.writer.write_table(table)
        self.buf, self.buffered = [], 0

    def add(self, table: pa.Table) -> None:
        start = 0
        while start < table.num_rows:
            piece = table.slice(start, min(self.ROW_GROUP - self.buffered, self.rows_per_part - self.in_part))
            start += piece.num_rows
            self.buf.append(piece)
            self.buffered += piece.num_rows
            self.in_part += piece.num_rows
            if self.buffered >= self.ROW_GROUP or self.in_part >= self.rows_per_part:
                self._flush()
            if self.in_part >= self.rows_per_part:
                self.writer.close()
                self.writer, self.part, self.in_part = None, self.part + 1, 0

    def close(self) -> None:
        if self.buf or (self.writer is None and self.part == 0):
            self._flush()  # an empty input still gets one (empty) part with the schema
        if self.writer is not None:
            self.writer.close()
