"""The trust boundary of the files that travel between users (docs/SECURITY.md), one test per line:
checkpoints run nothing, a pickle member or a path-like key in a shard is refused, exports stay inside
their folder, configs are data."""

from __future__ import annotations

import io
import json
import os
import pickle
import tarfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from kgclip.wds import open_webdataset


class _Boom:
    """Unpickling this creates MARKER: what a crafted file would do instead."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return path


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(buf, "JPEG")
    return buf.getvalue()


def _meta(key: str) -> bytes:
    return json.dumps({"key": key, "captions": ["a red square"], "cluster_id": 0}).encode()


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path: Path):
    from train import checkpoint as ckpt_io
    from train.cli import app

    marker = tmp_path / "ran"
    bad = tmp_path / "latest.pt"
    torch.save({"state_dict": {}, "payload": _Boom(str(marker))}, bad)
    with pytest.raises(ValueError, match="refused: checkpoints are loaded with weights_only=True"):
        ckpt_io.load(bad)
    r = CliRunner().invoke(app, ["export", "--checkpoint", str(bad), "--out", str(tmp_path / "exp")])
    assert r.exit_code != 0 and "refused" in " ".join(r.output.split()), r.output
    assert not marker.exists()


@pytest.mark.parametrize("ext", ["pyd", "pickle", "pth"])
def test_a_shard_with_a_pickle_member_is_refused_by_reader_and_validator(tmp_path: Path, ext: str):
    from clusterbuild import contract
    from clusterbuild.validate import validate_folder
    from train import data

    marker = tmp_path / "ran"
    folder = tmp_path / "shards"
    folder.mkdir()
    _tar(folder / "000000.tar", {"k0.jpg": _jpeg(), "k0.txt": b"a red square", "k0.json": _meta("k0"),
                                 f"k0.{ext}": pickle.dumps(_Boom(str(marker)))})
    with pytest.raises(ValueError, match=rf"member \.{ext} is a Python pickle"):
        list(contract.iter_samples(str(folder / "000000.tar")))
    raw = next(iter(open_webdataset(str(folder / "000000.tar"))))
    with pytest.raises(ValueError, match="fails the kgclip contract"):
        data.parse(raw)
    assert any("Python pickle" in v.message for v in validate_folder(folder))
    assert not marker.exists()


def test_a_path_like_key_never_names_a_file(tmp_path: Path):
    from clusterbuild.cli import app

    folder = tmp_path / "shards"
    folder.mkdir()
    _tar(folder / "000000.tar", {"../../evil.jpg": _jpeg(), "../../evil.txt": b"x", "../../evil.json": _meta("e")})
    (folder / "sizes.json").write_text('{"000000.tar": 1}')
    out = tmp_path / "export" / "neg.tsv"
    r = CliRunner().invoke(app, ["export-negclip", str(folder), "--out", str(out)])
    assert r.exit_code != 0 and "refused" in " ".join(r.output.split()), r.output
    assert not list(tmp_path.rglob("evil*")) and not (tmp_path.parent / "evil.jpg").exists()


def test_shard_folders_are_listed_by_name_never_by_what_sizes_json_says(tmp_path: Path):
    from train import data

    folder = tmp_path / "shards"
    folder.mkdir()
    _tar(folder / "000000.tar", {"k0.jpg": _jpeg(), "k0.txt": b"a", "k0.json": _meta("k0")})
    (folder / "sizes.json").write_text(json.dumps({"pipe:touch owned": 1, "/etc/passwd": 1, "../x.tar": 1}))
    assert data.resolve_shards([str(folder)]) == [str(folder / "000000.tar")]


def test_configs_are_data(tmp_path: Path):
    from train import config as train_config

    marker = tmp_path / "ran"
    y = tmp_path / "c.yaml"
    y.write_text(f"steps: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ValueError, match="is not plain YAML data"):
        train_config.load_file(y)
    from train.cli import app

    r = CliRunner().invoke(app, ["run", str(tmp_path), "--out", str(tmp_path / "o"), "--config", str(y)])
    assert r.exit_code == 2 and "not plain YAML data" in r.output and "Traceback" not in r.output, r.output
    assert not marker.exists()
