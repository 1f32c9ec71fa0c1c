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


def test_compiled_build_writes_the_python_build_bytes(vg_sample_dir: Path, wordnet_ready, tmp_path: Path):
    """`make` compiles pass 2 with mypyc (kgaug/native.py): the compiled modules must write exactly what
    the Python sources write (`KGAUG_PURE=1` runs those)."""
    from kgaug import native

    if not all(native.compiled().values()):
        pytest.skip("kgaug's pass-2 modules are not compiled here (`python -m kgaug.native build`)")
    outs = []
    for pure in ("", "1"):
        out = tmp_path / f"out{pure or 'c'}"
        env = dict(os.environ, KGAUG_PURE=pure)
        code = _BUILD + "; from kgaug import native; print(sorted(set(native.compiled().values())))"
        proc = subprocess.run([sys.executable, "-c", code, str(vg_sample_dir), str(out), "1"],
                              env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip() == ("[False]" if pure else "[True]"), proc.stdout
        outs.append(out)
    parts = sorted(p.name for p in (outs[0] / "table").glob("*.parquet"))
    assert parts
    for name in parts:
        assert (outs[0] / "table" / name).read_bytes() == (outs[1] / "table" / name).read_bytes(), name
    assert (outs[0] / "kg.json").read_bytes() == (outs[1] / "kg.json").read_bytes()


def test_a_compiled_build_older_than_its_sources_is_not_used(tmp_path: Path, monkeypatch):
    """An edited source must run as edited: a stamp that does not match the sources (or this Python)
    keeps the compiled folder off the package path, with a warning saying why."""
    import json

    from kgaug import _compiled

    native = tmp_path / "_native"
    (native / "kgaug").mkdir(parents=True)
    sources = {m: _compiled._digest(m) for m in _compiled.MODULES}
    stamp = native / _compiled.STAMP
    stamp.write_text(json.dumps({"abi": _compiled._abi(), "sources": sources}))
    monkeypatch.setattr(_compiled, "NATIVE", native)
    monkeypatch.delenv(_compiled.PURE_ENV, raising=False)
    assert _compiled.stale_reason(native) is None
    assert _compiled.package_path() == str(native / "kgaug")
    monkeypatch.setenv(_compiled.PURE_ENV, "1")
    assert _compiled.package_path() is None
    monkeypatch.delenv(_compiled.PURE_ENV)

    stamp.write_text(json.dumps({"abi": _compiled._abi(), "sources": dict(sources, evidence="0" * 64)}))
    assert "kgaug/evidence.py changed" in _compiled.stale_reason(native)
    with pytest.warns(RuntimeWarning, match="kgaug/evidence.py changed"):
        assert _compiled.package_path() is None
    stamp.write_text(json.dumps({"abi": ".cpython-00-other.so", "sources": sources}))
    assert "built for .cpython-00-other.so" in _compiled.stale_reason(native)
