"""Real photos: the 159 COCO val2017 images of ../shared/data/coco_val2017_mini."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clusterbuild import contract
from clusterbuild.cli import app
from clusterbuild.validate import validate_folder

ROOT = Path(__file__).resolve().parents[2]


def _check_shards(out: Path, n_expected: int) -> None:
    assert validate_folder(out) == []
    samples = list(contract.iter_samples([str(p) for p in contract.list_shards(out)]))
    assert len(samples) == n_expected == sum(contract.read_sizes(out).values())
    sizes = Counter(s.cluster_id for s in samples)
    assert len(sizes) > 1 and max(sizes.values()) < len(samples)  # non-trivial clusters
    info = json.loads((out / contract.INFO_FILE).read_text())
    assert info["clusters"]["k"] == len(sizes)


@pytest.mark.slow
def test_shard_real_coco_photos(coco_mini_dir: Path, tmp_path: Path, kg):
    """clusterbuild alone on real photos, from a kgaug-format table written here."""
    data = json.loads((coco_mini_dir / "captions_val2017_subset.json").read_text())
    caps: dict[int, list[str]] = {}
    for a in data["annotations"]:
        caps.setdefault(a["image_id"], []).append(a["caption"].strip())
    rows = [kg.kg_row(f"coco_{im['id']}", str(coco_mini_dir / "images" / im["file_name"]), caps[im["id"]][0],
                      captions=caps[im["id"]], source="coco") for im in data["images"] if im["id"] in caps]
    inp = kg.write_kgaug(tmp_path / "kg", rows)
    out = tmp_path / "shards"
    r = CliRunner().invoke(app, ["shard", str(inp), "--out", str(out), "--model", "kgclip-tiny-64",
                                 "--cluster-size", "20", "--samples-per-shard", "50", "--quiet"])
    assert r.exit_code == 0, r.output
    _check_shards(out, len(rows))


@pytest.mark.slow
def test_chain_kgaug_build_coco_to_validate(coco_mini_dir: Path, tmp_path: Path, spacy_model: str):
    """`kgaug build --source coco` -> `clusterbuild shard` -> `clusterbuild validate`, as a user runs them."""
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    kg_out, shards = tmp_path / "kg", tmp_path / "shards"
    p = subprocess.run([str(bin_dir / "kgaug"), "build", "--source", "coco",
                        "--captions", str(coco_mini_dir / "captions_val2017_subset.json"),
                        "--images", str(coco_mini_dir / "images"), "--out", str(kg_out),
                        "--spacy-model", spacy_model], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    p = subprocess.run([str(bin_dir / "clusterbuild"), "shard", str(kg_out), "--out", str(shards),
                        "--model", "kgclip-tiny-64", "--cluster-size", "20", "--samples-per-shard", "50",
                        "--quiet"], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    p = subprocess.run([str(bin_dir / "clusterbuild"), "validate", str(shards)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    info = json.loads((shards / contract.INFO_FILE).read_text())
    assert info["num_samples"] > 100
    _check_shards(shards, info["num_samples"])
    samples = list(contract.iter_samples([str(x) for x in contract.list_shards(shards)]))
    assert sum(len(s.meta["hard_negatives"]) for s in samples) > 0
    assert sum(len(s.meta["pseudo_captions"]) for s in samples) > 0
