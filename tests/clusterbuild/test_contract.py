"""The shard contract (issue 2): a tiny set written with the contract module validates clean, reads
back with webdataset, and the validator names each violation with shard and key."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clusterbuild import contract, shardio
from clusterbuild.cli import app
from clusterbuild.validate import validate_folder
from kgclip.wds import open_webdataset


def _jpeg(i: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 12), (10 * i, 100, 200 - 10 * i)).save(buf, format="JPEG")
    return buf.getvalue()


def _samples(n: int, prefix: str = "s") -> list[contract.Sample]:
    out = []
    for i in range(n):
        key = f"{prefix}{i:04d}"
        meta = contract.make_meta(key, "synthetic", [f"caption {i}"],
                           pseudo_captions=[{"text": f"pseudo {i}", "facts": ["red(ball)"]}],
                           hard_negatives=[{"type": "swap_att", "text": f"neg {i}", "from": "a", "to": "b"}],
                           cluster_id=i % 2, knn=[f"{prefix}{(i + 1) % n:04d}"], sensitive={})
        out.append(contract.Sample(key, _jpeg(i), "jpg", f"caption {i}", meta))
    return out


@pytest.fixture
def shard_set(tmp_path: Path) -> Path:
    folder = tmp_path / "shards"
    shardio.write_shard_set(folder, _samples(7), samples_per_shard=3, info={"test": True})
    return folder


def _messages(folder: Path) -> list[str]:
    return [str(v) for v in validate_folder(folder)]


def _rewrite_tar(path: Path, edit) -> None:
    """Rewrite one tar, passing its (name, bytes) member list through `edit`."""
    with tarfile.open(path) as tar:
        members = [(ti.name, tar.extractfile(ti).read()) for ti in tar if ti.isfile()]
    members = edit(members)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    path.write_bytes(buf.getvalue())


def test_written_set_is_clean_and_complete(shard_set: Path):
    assert _messages(shard_set) == []
    assert contract.read_sizes(shard_set) == {"000000.tar": 3, "000001.tar": 3, "000002.tar": 1}
    info = json.loads((shard_set / contract.INFO_FILE).read_text())
    assert info["num_samples"] == 7 and info["schema"] == contract.SCHEMA
    for name in ("000000", "000001", "000002"):
        assert (shard_set / f"{name}_stats.json").is_file() and (shard_set / f"{name}.parquet").is_file()
    result = CliRunner().invoke(app, ["validate", str(shard_set)])
    assert result.exit_code == 0, result.output


def test_reads_back_with_webdataset(shard_set: Path):
    urls = [str(p) for p in contract.list_shards(shard_set)]
    got = list(contract.iter_samples(urls))
    want = _samples(7)
    assert [s.key for s in got] == [s.key for s in want]
    assert all(g.image == w.image and g.txt == w.txt and g.meta == w.meta for g, w in zip(got, want))
    # the same through a plain webdataset pipeline, the way other trainers read it
    ds = open_webdataset(urls).decode("pilrgb").to_tuple("jpg", "txt", "json", "cls")
    rows = list(ds)
    assert len(rows) == 7 and rows[0][0].size == (16, 12) and rows[0][1] == "caption 0"
    assert rows[1][2]["cluster_id"] == 1 and int(rows[1][3]) == 1


def test_same_samples_same_bytes(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    shardio.write_shard_set(a, _samples(4), 2)
    shardio.write_shard_set(b, _samples(4), 2)
    for name in ("000000.tar", "000001.tar", "000000.parquet", "sizes.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_catches_dotted_key(shard_set: Path):
    _rewrite_tar(shard_set / "000000.tar",
                 lambda ms: [(n.replace("s0000.", "s0.000."), d) for n, d in ms])
    msgs = _messages(shard_set)
    assert any("000000.tar:s0" in m and "dot" in m for m in msgs), msgs


def test_catches_missing_image(shard_set: Path):
    _rewrite_tar(shard_set / "000001.tar", lambda ms: [(n, d) for n, d in ms if n != "s0004.jpg"])
    assert "000001.tar:s0004: missing image member (jpg/png/webp)" in _messages(shard_set)


def test_catches_missing_txt(shard_set: Path):
    _rewrite_tar(shard_set / "000000.tar", lambda ms: [(n, d) for n, d in ms if n != "s0001.txt"])
    assert "000000.tar:s0001: missing txt member" in _messages(shard_set)


def test_catches_undecodable_image(shard_set: Path):
    _rewrite_tar(shard_set / "000000.tar",
                 lambda ms: [(n, d[: len(d) // 3] if n == "s0002.jpg" else d) for n, d in ms])
    msgs = _messages(shard_set)
    assert any(m.startswith("000000.tar:s0002: undecodable image") for m in msgs), msgs


@pytest.mark.parametrize("edit, expect", [
    (lambda m: {k: v for k, v in m.items() if k != "cluster_id"}, "lacks required field 'cluster_id'"),
    (lambda m: dict(m, knn="s0001"), "json field 'knn' is str"),
    (lambda m: dict(m, hard_negatives=[{"type": "swap_att", "text": "x"}]), "hard_negatives[0] lacks from, to"),
    (lambda m: dict(m, weight=-1.0), "not a finite non-negative number"),
    (lambda m: dict(m, schema="other/9"), "json schema is 'other/9'"),
])
def test_catches_json_not_matching_schema(shard_set: Path, edit, expect):
    def change(ms):
        return [(n, json.dumps(edit(json.loads(d))).encode() if n == "s0000.json" else d) for n, d in ms]

    _rewrite_tar(shard_set / "000000.tar", change)
    msgs = _messages(shard_set)
    assert any(m.startswith("000000.tar:s0000:") and expect in m for m in msgs), msgs


def test_catches_counts_not_matching_sizes(shard_set: Path):
    sizes = contract.read_sizes(shard_set)
    sizes["000001.tar"] = 5
    (shard_set / contract.SIZES_FILE).write_text(json.dumps(sizes))
    assert "000001.tar: sizes.json says 5 samples, tar holds 3" in _messages(shard_set)


def test_catches_truncated_tar(shard_set: Path):
    path = shard_set / "000001.tar"
    data = path.read_bytes()
    path.write_bytes(data[:1300])
    msgs = _messages(shard_set)
    assert any(m.startswith("000001.tar: truncated or unreadable tar") for m in msgs), msgs


def test_catches_unreadable_tar(shard_set: Path):
    (shard_set / "000002.tar").write_bytes(b"this is not a tar file at all" * 40)
    msgs = _messages(shard_set)
    assert any(m.startswith("000002.tar: truncated or unreadable tar") for m in msgs), msgs
    result = CliRunner().invoke(app, ["validate", str(shard_set)])
    assert result.exit_code == 1 and "000002.tar" in result.output


def test_catches_duplicate_keys_across_shards(shard_set: Path):
    _rewrite_tar(shard_set / "000001.tar", lambda ms: [(n.replace("s0003", "s0000"), d) for n, d in ms])
    msgs = _messages(shard_set)
    assert any("000001.tar:s0000: duplicate key (also in 000000.tar)" in m for m in msgs), msgs


def test_catches_missing_folder_files(shard_set: Path):
    (shard_set / contract.SIZES_FILE).unlink()
    (shard_set / "000001_stats.json").unlink()
    (shard_set / "000002.parquet").unlink()
    msgs = _messages(shard_set)
    assert any(m.startswith("sizes.json: missing") for m in msgs)
    assert "000001.tar: missing 000001_stats.json" in msgs and "000002.tar: missing 000002.parquet" in msgs
