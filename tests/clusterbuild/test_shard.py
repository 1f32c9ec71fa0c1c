"""`clusterbuild shard`: contract-valid output, cluster-contiguous order, provenance, determinism,
and byte-identical resumption after a crash."""

from __future__ import annotations

import json
import os
import re
from itertools import groupby
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from clusterbuild import contract, shardio
from clusterbuild import embed as embedding
from clusterbuild.cli import app
from clusterbuild.validate import validate_folder


def shard(inp: Path, out: Path, *extra: str, args: list[str]):
    return CliRunner().invoke(app, ["shard", str(inp), "--out", str(out), *args, *extra])


def read_all(out: Path) -> list[contract.Sample]:
    return list(contract.iter_samples([str(p) for p in contract.list_shards(out)]))


def folder_bytes(out: Path) -> dict[str, bytes]:
    """Everything that must be byte-identical between runs (not _info.json: timings differ)."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())
            if p.is_file() and p.name not in (contract.INFO_FILE,)}


def test_shard_output_follows_contract(kgaug_small: Path, tmp_path: Path, kg, capfd):
    out = tmp_path / "out"
    r = shard(kgaug_small, out, args=kg.SHARD_ARGS)
    assert r.exit_code == 0, r.output
    assert r.output.count("RANDOM INIT") == 1, r.output  # once, not once per stage
    # 16 rows in 3 clusters: said in words, not by FAISS's raw C++ warning on stderr
    assert "clusters may be uneven" in " ".join(r.output.split())
    assert "please provide at least" not in capfd.readouterr().err
    assert validate_folder(out) == []
    assert contract.read_sizes(out) == {"000000.tar": 5, "000001.tar": 5, "000002.tar": 5, "000003.tar": 1}
    samples = read_all(out)
    keys = [s.key for s in samples]
    assert sorted(keys) == sorted(f"synthetic_img{i:03d}" for i in range(16))
    # samples of one cluster are contiguous, and the cluster order is the seeded shuffle
    runs = [c for c, _ in groupby(s.cluster_id for s in samples)]
    assert len(runs) == len(set(runs)) == 3
    assert runs == [int(c) for c in np.random.default_rng(7).permutation(np.unique(runs))]
    rows = {r_["key"]: r_ for r_ in _table_rows(kgaug_small)}
    for s in samples:
        m, row = s.meta, rows[s.key]
        assert contract.validate_meta(m, s.key) == []
        assert s.txt == row["captions"][0] and m["captions"] == row["captions"]
        assert [p["text"] for p in m["pseudo_captions"]] == [p["text"] for p in row["pseudo_captions"]]
        assert m["pseudo_captions"][0]["facts"] == row["pseudo_captions"][0]["facts"]
        neg = m["hard_negatives"][0]
        assert {"type", "text", "from", "to", "fact", "plausibility", "caption"} <= set(neg)
        assert neg["fact"] == "red(circle)" and neg["plausibility"] == pytest.approx(0.5)
        assert len(m["knn"]) == 2 and s.key not in m["knn"] and set(m["knn"]) <= set(keys)
        assert set(m["near_duplicates"]) <= set(m["knn"])
        assert m["weight"] == 1.0 and m["license"] == "CC-BY-4.0" and m["image"] == row["image"]
        assert m["scene_graph"]["objects"][0]["name"] == "circle"
        assert m["sensitive"] == row["sensitive"]
        # already-fine RGB JPEG/PNG files are stored byte for byte
        assert s.image == Path(row["image"]).read_bytes()
        assert s.image_ext == ("png" if row["image"].endswith(".png") else "jpg")
        import io

        from PIL import Image

        assert Image.open(io.BytesIO(s.image)).size == (m["width"], m["height"])
    assert any(s.meta["sensitive"] == {"gender": "female"} for s in samples)
    # parquet rows in tar order
    for tar in contract.list_shards(out):
        pkeys = pq.read_table(out / contract.parquet_name(tar.name)).column("key").to_pylist()
        assert pkeys == [s.key for s in contract.iter_samples(str(tar))]
    info = json.loads((out / contract.INFO_FILE).read_text())
    assert info["num_samples"] == 16 and info["num_shards"] == 4 and info["shards"] == "{000000..000003}.tar"
    assert info["model"] == {"name": "kgclip-tiny-64", "pretrained": None, "random_init": True,
                             "warning": info["model"]["warning"]} and "RANDOM INIT" in info["model"]["warning"]
    assert info["clusters"]["k"] == 3 and info["clusters"]["seed"] == 7 and not info["clusters"]["subsampled"]
    assert info["clusters"]["max_points_per_centroid"] == 256
    assert info["seed"] == 7 and info["counts"]["written"] == 16 and info["counts"]["skipped"] == 0
    assert {"torch", "open_clip_torch", "faiss-cpu", "webdataset"} <= set(info["versions"])
    assert {"embed_s", "cluster_s", "knn_s", "write_s", "total_s"} <= set(info["timings"])
    assert np.load(out / "centroids.npy").shape == (3, 64)
    emb = embedding.load(out / "embeddings")
    assert emb.image.dtype == np.float16 and emb.image.shape == (16, 64)
    assert np.allclose(np.linalg.norm(emb.image.astype(np.float32), axis=1), 1, atol=2e-3)
    assert emb.text.shape == (48, 64) and set(emb.text_kind.tolist()) == {embedding.KIND_CAPTION, embedding.KIND_PSEUDO}


def _table_rows(folder: Path) -> list[dict]:
    from kgaug.table import read_rows

    return list(read_rows(folder))


def test_rerun_after_crash_is_byte_identical(kgaug_small: Path, tmp_path: Path, kg, monkeypatch):
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert shard(kgaug_small, ref, args=kg.SHARD_ARGS).exit_code == 0
    real_write = shardio.write_shard
    calls = []

    def crash_on_third(folder, index, samples, *a, **kw):
        calls.append(index)
        if index == 2:  # die after the parquet is written but before the tar is renamed in
            shardio.atomic_write_bytes(Path(folder) / contract.parquet_name(contract.shard_name(index)), b"partial")
            raise RuntimeError("simulated kill")
        return real_write(folder, index, samples, *a, **kw)

    monkeypatch.setattr(shardio, "write_shard", crash_on_third)
    r = shard(kgaug_small, out, args=kg.SHARD_ARGS)
    assert r.exit_code != 0 and calls == [0, 1, 2]
    assert not (out / "000002.tar").exists() and not (out / contract.SIZES_FILE).exists()
    (out / ".000002.tar.tmp-99999").write_bytes(b"half a tar")  # what kill -9 mid-write leaves
    monkeypatch.setattr(shardio, "write_shard", real_write)

    def no_model(*a, **kw):
        raise AssertionError("embeddings should come from the cache on a rerun")

    monkeypatch.setattr(embedding.Encoder, "image_tensors", no_model)
    monkeypatch.setattr(embedding.Encoder, "texts", no_model)
    r = shard(kgaug_small, out, args=kg.SHARD_ARGS)
    assert r.exit_code == 0, r.output
    assert "resumed: 2 of 4 shards" in r.output
    assert folder_bytes(out) == folder_bytes(ref)
    info_a, info_b = (json.loads((d / contract.INFO_FILE).read_text()) for d in (ref, out))
    for info in (info_a, info_b):
        info.pop("timings")
        info.pop("options")  # holds the --out folder, which differs by construction
    assert info_a == info_b
    # a deleted final shard is rewritten identically too
    (out / "000001.tar").unlink()
    assert shard(kgaug_small, out, args=kg.SHARD_ARGS).exit_code == 0
    assert folder_bytes(out) == folder_bytes(ref)


def test_same_seed_same_bytes_other_seed_refused_without_overwrite(kgaug_small: Path, tmp_path: Path, kg):
    a, b = tmp_path / "a", tmp_path / "b"
    assert shard(kgaug_small, a, args=kg.SHARD_ARGS).exit_code == 0
    assert shard(kgaug_small, b, args=kg.SHARD_ARGS).exit_code == 0
    assert {k: v for k, v in folder_bytes(a).items()} == folder_bytes(b)
    other = [x if x != "7" else "8" for x in kg.SHARD_ARGS]
    from clusterbuild import pipeline

    created = []
    real_load = pipeline.load_model
    pipeline.load_model = lambda *a, **k: created.append(1) or real_load(*a, **k)
    try:
        r = shard(kgaug_small, b, args=other)
    finally:
        pipeline.load_model = real_load
    assert r.exit_code == 1 and "--overwrite" in r.output
    assert not created  # refused before the model was built and anything embedded
    r = shard(kgaug_small, b, "--overwrite", args=other)
    assert r.exit_code == 0 and validate_folder(b) == []
    assert json.loads((b / contract.INFO_FILE).read_text())["seed"] == 8


def test_embedding_chunks_resume(kgaug_small: Path, tmp_path: Path, monkeypatch):
    from kgclip import models

    rows = [embedding.embed_row(r) for r in _table_rows(kgaug_small)]
    loaded = models.create("kgclip-tiny-64")
    ref = embedding.embed_rows(rows, loaded, tmp_path / "ref", batch_size=4, chunk_rows=5, progress=False)
    seen = []
    real = embedding.Encoder.image_tensors

    def flaky(self, x):
        seen.append(len(x))
        if len(seen) == 4:  # third chunk (batches of 4: chunk = 4 + 1 images)
            raise RuntimeError("simulated crash")
        return real(self, x)

    monkeypatch.setattr(embedding.Encoder, "image_tensors", flaky)
    with pytest.raises(RuntimeError):
        embedding.embed_rows(rows, loaded, tmp_path / "c", batch_size=4, chunk_rows=5, progress=False)
    assert sorted(p.name for p in (tmp_path / "c" / "chunks").iterdir()) == ["chunk-00000.npz"]
    seen.clear()
    monkeypatch.setattr(embedding.Encoder, "image_tensors", real)
    got = embedding.embed_rows(rows, loaded, tmp_path / "c", batch_size=4, chunk_rows=5, progress=False)
    assert np.array_equal(got.image, ref.image) and np.array_equal(got.text, ref.text)
    assert not (tmp_path / "c" / "chunks").exists()
    for name in ("image.npy", "text.npy", "text_row.npy", "status.json"):
        assert (tmp_path / "c" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()


def test_text_only_rows_are_embedded_and_counted(tmp_path: Path, kg):
    rows = kg.synthetic_rows(tmp_path / "imgs", 8)
    rows += [kg.kg_row(f"synthetic_noimg{i}", None, f"a caption without picture {i}") for i in range(3)]
    inp = kg.write_kgaug(tmp_path / "kg", rows)
    out = tmp_path / "out"
    r = shard(inp, out, args=[*kg.SHARD_ARGS[:2], "--clusters", "2", "--quiet"])
    assert r.exit_code == 0, r.output
    info = json.loads((out / contract.INFO_FILE).read_text())
    assert info["counts"]["text_only_rows"] == 3 and info["embeddings"]["text_only_rows"] == 3
    assert info["counts"]["skipped_by_reason"] == {"no_image": 3} and info["num_samples"] == 8
    emb = embedding.load(out / "embeddings")
    assert emb.has_image.sum() == 8 and set(emb.text_row.tolist()) == set(range(11))
    assert validate_folder(out) == []


def test_separate_embed_and_cluster_steps_feed_shard(kgaug_small: Path, tmp_path: Path, kg, monkeypatch):
    from clusterbuild import cluster

    out = tmp_path / "out"
    model = ["--model", "kgclip-tiny-64", "--quiet"]
    r = CliRunner().invoke(app, ["embed", str(kgaug_small), "--out", str(out), *model])
    assert r.exit_code == 0, r.output
    man = json.loads((out / "embeddings" / embedding.MANIFEST).read_text())
    assert man["complete"] and man["counts"]["images"] == 16 and man["counts"]["texts"] == 48
    r = CliRunner().invoke(app, ["cluster", str(kgaug_small), "--out", str(out), *model, "--clusters", "3",
                                 "--knn", "2", "--seed", "7", "--cluster-on", "image"])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "embeddings" / "clusters.json").read_text())
    assert meta["params"]["k"] == 3 and meta["params"]["n"] == 16
    assert not list(out.glob("*.tar"))

    def boom(*a, **kw):
        raise AssertionError("shard must reuse the cached embeddings and clusters")

    monkeypatch.setattr(embedding.Encoder, "image_tensors", boom)

    monkeypatch.setattr(cluster, "spherical_kmeans", boom)
    r = shard(kgaug_small, out, args=kg.SHARD_ARGS)
    assert r.exit_code == 0, r.output
    assert validate_folder(out) == []


def test_cluster_on_graph_groups_images_described_with_the_same_words(tmp_path: Path, kg):
    """Rows whose scene graphs use the same words share a cluster (whatever the binding); k is capped
    at the number of distinct word sets; kNN and near-duplicate flags stay on the image embeddings."""
    rows = kg.synthetic_rows(tmp_path / "imgs", 12)
    words = [("cube", "red", "ball", "blue"), ("cube", "blue", "ball", "red"), ("star", "green", "ring", "pink")]
    for i, r in enumerate(rows):
        a, ca, b, cb = words[i % 3]
        r["scene_graph"] = json.dumps({"objects": [{"id": "0", "name": a, "attributes": [ca]},
                                                   {"id": "1", "name": b, "attributes": [cb]}],
                                       "relations": [["0" if i % 2 else "1", "left of", "1" if i % 2 else "0"]]})
    inp = kg.write_kgaug(tmp_path / "kg", rows)
    out = tmp_path / "out"
    r = shard(inp, out, args=["--model", "kgclip-tiny-64", "--clusters", "5", "--knn", "2", "--seed", "7", "--quiet"])
    assert r.exit_code == 0, r.output
    info = json.loads((out / contract.INFO_FILE).read_text())
    assert info["clusters"]["cluster_on"] == "graph" and info["clusters"]["k"] == 2
    assert "only 2 distinct word sets" in info["clusters"]["k_note"]
    by_key = {s.key: s.meta["cluster_id"] for s in read_all(out)}
    ids = [by_key[row["key"]] for row in rows]
    assert len({ids[i] for i in range(12) if i % 3 < 2}) == 1  # red/blue cube+ball in either binding
    assert {ids[i] for i in range(12) if i % 3 == 2}.isdisjoint({ids[0]})
    assert validate_folder(out) == []


def test_decode_workers_give_the_same_embeddings(kgaug_small: Path, tmp_path: Path):
    from kgclip import models

    rows = [embedding.embed_row(r) for r in _table_rows(kgaug_small)]
    rows.append(embedding.EmbedRow("gone", str(tmp_path / "gone.jpg"), (("a caption", embedding.KIND_CAPTION),)))
    loaded = models.create("kgclip-tiny-64")
    a = embedding.embed_rows(rows, loaded, tmp_path / "a", batch_size=8, progress=False)
    b = embedding.embed_rows(rows, loaded, tmp_path / "b", batch_size=8, workers=2, progress=False)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.text, b.text)
    assert a.image_status[-1] == b.image_status[-1] == "missing_image" and not b.has_image[-1]


def test_balance_attribute_sets_weights(kgaug_small: Path, tmp_path: Path, kg):
    out = tmp_path / "out"
    r = shard(kgaug_small, out, "--balance-attribute", "gender", args=kg.SHARD_ARGS)
    assert r.exit_code == 0, r.output
    assert validate_folder(out) == []
    samples = read_all(out)
    tagged = [s.meta["weight"] for s in samples if s.meta["sensitive"]]
    untagged = [s.meta["weight"] for s in samples if not s.meta["sensitive"]]
    assert len(tagged) == 4 and all(w == 1.0 for w in untagged)
    info = json.loads((out / contract.INFO_FILE).read_text())
    assert info["balance"]["attribute"] == "gender" and "female" in info["balance"]["groups"]
    weights = pq.read_table(out / "000000.parquet").column("weight").to_pylist()
    assert weights == [s.meta["weight"] for s in samples[:5]]


# Dies by SIGKILL halfway through writing the third tar's temp file: what `kill -9` leaves behind.
KILL_WRAPPER = """
import os, signal, sys
from pathlib import Path
from clusterbuild import shardio
real = shardio.atomic_write_bytes
def dying(path, data):
    path = Path(path)
    if path.name == "000002.tar":
        path.with_name(f".{path.name}.tmp-{os.getpid()}").write_bytes(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return real(path, data)
shardio.atomic_write_bytes = dying
from clusterbuild.cli import app
app(sys.argv[1:], prog_name="clusterbuild")
"""


@pytest.mark.slow
def test_kill_9_mid_shard_then_rerun_is_byte_identical(kgaug_small: Path, tmp_path: Path, kg):
    import os
    import signal
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    cli = [sys.executable, "-m", "clusterbuild.cli"]
    ref, out = tmp_path / "ref", tmp_path / "out"

    def run(cmd, folder):
        return subprocess.run([*cmd, "shard", str(kgaug_small), "--out", str(folder), *kg.SHARD_ARGS], env=env,
                              capture_output=True, text=True, timeout=300)

    p = run(cli, ref)
    assert p.returncode == 0, p.stderr[-2000:]
    p = run([sys.executable, "-c", KILL_WRAPPER], out)
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr[-2000:])
    assert (out / "000001.tar").is_file() and not (out / "000002.tar").exists()
    assert list(out.glob(".000002.tar.tmp-*")) and not (out / contract.SIZES_FILE).exists()
    p = run(cli, out)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "resumed: 2 of 4 shards" in " ".join(p.stderr.split())
    assert folder_bytes(out) == folder_bytes(ref)
    assert validate_folder(out) == []


def test_cluster_on_auto_falls_back_to_images_when_every_graph_is_the_same(tmp_path: Path, kg):
    """Captions-only tables whose rows all carry one placeholder graph would make a single graph
    cluster: auto clusters them on the image embeddings instead, and says so."""
    rows = kg.synthetic_rows(tmp_path / "imgs", 12)  # every row: the conftest's one-object graph
    inp = kg.write_kgaug(tmp_path / "kg", rows)
    out = tmp_path / "out"
    r = shard(inp, out, args=["--model", "kgclip-tiny-64", "--clusters", "3", "--knn", "2", "--seed", "7"])
    assert r.exit_code == 0, r.output
    assert "clustering on image embeddings" in r.output
    info = json.loads((out / contract.INFO_FILE).read_text())
    assert info["clusters"]["cluster_on"] == "image" and info["clusters"]["k"] == 3
    assert len({s.meta["cluster_id"] for s in read_all(out)}) > 1


def test_progress_bars_like_the_other_tools_and_quiet_silences_them(kgaug_small: Path, tmp_path: Path, kg):
    import subprocess
    import sys

    code = "import sys; from clusterbuild.cli import app; app(sys.argv[1:], prog_name='clusterbuild')"
    env = dict(os.environ, COLUMNS="120", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    runs = {}
    for name, extra in (("bars", []), ("quiet", ["-q"])):
        args = [a for a in kg.SHARD_ARGS if a not in ("--quiet", "-q")]
        r = subprocess.run([sys.executable, "-c", code, "shard", str(kgaug_small), "--out", str(tmp_path / name),
                            *args, *extra], capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        runs[name] = r
    bars = runs["bars"].stderr
    assert re.search(r"embed .*16/16 .*rows/s", bars) and re.search(r"shards .*4/4 .*tars/s", bars), bars[-2000:]
    quiet = runs["quiet"].stderr
    assert not re.search(r"embed .*16/16", quiet) and not re.search(r"shards .*4/4", quiet), quiet
