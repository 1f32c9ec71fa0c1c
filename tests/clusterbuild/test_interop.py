"""Other tools on our artifacts: open_clip's own trainer (webdataset 0.2.86), webdataset 1.0.x, and
the NegCLIP fork's TSV reader (pandas + ast.literal_eval)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clusterbuild import contract
from clusterbuild.cli import app
from kgclip.wds import open_webdataset

ROOT = Path(__file__).resolve().parents[2]
WDS_OLD = Path(os.environ.get("KGCLIP_WDS_OLD", ROOT / ".cache" / "webdataset-0.2.86"))

# open_clip_train.main takes --model as a name only: register our tiny configs first, then hand over.
TRAIN_WRAPPER = """
import sys, open_clip, webdataset
from kgclip.models import CONFIG_DIR
open_clip.add_model_config(CONFIG_DIR)
print("webdataset", webdataset.__version__, flush=True)
from open_clip_train.main import main
main(sys.argv[1:])
"""


@pytest.fixture
def shard_folder(kgaug_small: Path, tmp_path: Path, kg) -> Path:
    out = tmp_path / "shards"
    r = CliRunner().invoke(app, ["shard", str(kgaug_small), "--out", str(out), *kg.SHARD_ARGS])
    assert r.exit_code == 0, r.output
    return out


def test_reads_with_installed_webdataset(shard_folder: Path):
    import webdataset as wds

    assert wds.__version__.startswith("1.")
    urls = str(shard_folder / contract.brace_pattern([p.name for p in contract.list_shards(shard_folder)]))
    samples = list(contract.iter_samples(urls))
    assert len(samples) == sum(contract.read_sizes(shard_folder).values()) == 16
    # the open_clip-style fluent pipeline on 1.0.x
    ds = open_webdataset(urls).decode("pilrgb").rename(image="jpg;png;jpeg;webp", text="txt")
    ds = ds.to_tuple("image", "text")
    got = list(ds)
    assert len(got) == 16 and all(im.mode == "RGB" and isinstance(t, str) and t for im, t in got)


def test_negclip_tsv_parses_back(shard_folder: Path, tmp_path: Path):
    import pandas as pd

    tsv = tmp_path / "negclip" / "train.tsv"
    r = CliRunner().invoke(app, ["export-negclip", str(shard_folder), "--out", str(tsv)])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tsv, sep="\t", converters={"neg_caption": ast.literal_eval, "neg_image": ast.literal_eval})
    assert list(df.columns) == ["title", "filepath", "neg_caption", "neg_image"]
    assert len(df) == 16
    samples = {s.key: s for s in contract.iter_samples([str(p) for p in contract.list_shards(shard_folder)])}
    for _, row in df.iterrows():
        assert Path(row.filepath).is_file()
        key = Path(row.filepath).stem
        assert Path(row.filepath).read_bytes() == samples[key].image
        assert row.title == samples[key].txt
        assert row.neg_caption == [n["text"] for n in samples[key].meta["hard_negatives"]]
        assert row.neg_image and all(0 <= j < len(df) and j != _ for j in row.neg_image)
        # neg_image indices point at the sample's kNN neighbours
        assert {Path(df.filepath[j]).stem for j in row.neg_image} <= set(samples[key].meta["knn"])


def test_negclip_rows_without_negatives_left_out(tmp_path: Path, kg):
    rows = kg.synthetic_rows(tmp_path / "imgs", 6)
    rows[2]["hard_negatives"] = []
    inp = kg.write_kgaug(tmp_path / "kg", rows)
    out = tmp_path / "shards"
    assert CliRunner().invoke(app, ["shard", str(inp), "--out", str(out), "--model", "kgclip-tiny-64",
                                    "--clusters", "2", "--knn", "1", "--quiet"]).exit_code == 0
    from clusterbuild.negclip import export

    counts = export(out, tmp_path / "n.tsv")
    assert counts["rows"] == 5 and counts["skipped_no_hard_negatives"] == 1
    import pandas as pd

    df = pd.read_csv(tmp_path / "n.tsv", sep="\t", converters={"neg_image": ast.literal_eval})
    assert all(0 <= j < 5 for js in df.neg_image for j in js)


@pytest.mark.slow
@pytest.mark.interop
def test_open_clip_trainer_trains_on_our_shards(shard_folder: Path, tmp_path: Path):
    if not (WDS_OLD / "webdataset" / "__init__.py").is_file():
        pytest.skip(f"webdataset 0.2.86 not at {WDS_OLD} (run `make test-assets`): open_clip's trainer "
                    "fails with webdataset >= 0.2.96")
    shards = [p.name for p in contract.list_shards(shard_folder)]
    assert len(shards) == 4
    logs = tmp_path / "logs"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(WDS_OLD), str(ROOT)]), OMP_NUM_THREADS="1",
               HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-c", TRAIN_WRAPPER,
           "--train-data", str(shard_folder / contract.brace_pattern(shards)), "--dataset-type", "webdataset",
           "--model", "kgclip-tiny-64", "--batch-size", "4", "--epochs", "1", "--workers", "1",
           "--lr", "1e-4", "--warmup", "1", "--device", "cpu", "--precision", "fp32", "--seed", "0",
           "--logs", str(logs), "--name", "interop", "--save-frequency", "1", "--report-to", "",
           "--log-every-n-steps", "1"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "webdataset 0.2.86" in out
    ckpt = logs / "interop" / "checkpoints" / "epoch_1.pt"
    assert ckpt.is_file(), out[-2000:]
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["epoch"] == 1 and "state_dict" in state
    # the sample count came from our sizes.json (16 samples, batch 4 -> 4 steps)
    assert sum(json.loads((shard_folder / contract.SIZES_FILE).read_text()).values()) == 16
    log_text = (logs / "interop" / "out.log").read_text()
    assert "[16/16 (100%)]" in log_text or "16/16" in log_text, log_text[-2000:]
