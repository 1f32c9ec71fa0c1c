"""Same inputs + seed -> same bytes, whatever the process's hash seed and the number of pass-2 workers.

nltk hands back related synsets (hyponyms, antonyms) in set order, which follows PYTHONHASHSEED, and
forked workers share WordNet's open data files: both once changed output bytes between runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_BUILD = ("import sys; from pathlib import Path; from kgaug.build import BuildConfig, build; "
          "build(BuildConfig(source='vg', vg_dir=Path(sys.argv[1]), out=Path(sys.argv[2]), "
          "workers=int(sys.argv[3]), progress=False))")


@pytest.mark.slow
def test_vg_build_bytes_independent_of_hash_seed_and_workers(vg_sample_dir: Path, wordnet_ready, tmp_path: Path):
    outs = []
    for hash_seed, workers in (("1", 1), ("2", 2)):
        out = tmp_path / f"out{hash_seed}"
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        proc = subprocess.run([sys.executable, "-c", _BUILD, str(vg_sample_dir), str(out), str(workers)],
                              env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(out)
    parts = sorted(p.name for p in (outs[0] / "table").glob("*.parquet"))
    assert parts and parts == sorted(p.name for p in (outs[1] / "table").glob("*.parquet"))
    for name in parts:
        assert (outs[0] / "table" / name).read_bytes() == (outs[1] / "table" / name).read_bytes(), name
    assert (outs[0] / "kg.json").read_bytes() == (outs[1] / "kg.json").read_bytes()
