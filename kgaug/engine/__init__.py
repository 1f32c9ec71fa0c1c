"""Engines: what runs kgaug's per-image steps (kgaug/image.py) over a corpus.

`local` runs both passes on this machine's cores (forked workers); `spill` is the record pass 1
writes and pass 2 reads. An engine is handed the per-image functions `image.keep` (pass 1: count an
image into the KG, reduce it to a `SpillRecord`) and `image.table_row` (pass 2: a spilled image ->
its table row), and must put results back in input order so the bytes do not depend on it.
"""
