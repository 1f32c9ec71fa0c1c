"""`train run` shows its progress: a live line (step, loss, lr, img/s, AHNM β, ETA) on a terminal, plain
lines when stderr is a pipe or file, nothing with --quiet. Run as a user runs it: a real process, once in a
real pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

from kgclip.progress import duration, train_line

ROOT = Path(__file__).resolve().parents[2]


def test_plain_line_and_durations():
    assert duration(42) == "42s" and duration(185) == "3m05s" and duration(7620) == "2h07m"
    line = train_line(120, 1000, 2.31415, 4.8e-4, 512.4, 0.3125, 192)
    assert line == "step 120/1000 (12 %)  loss 2.3142  lr 4.80e-04  512 img/s  AHNM β 0.31  ETA 3m12s"
    assert "AHNM" not in train_line(1, 2, 1.0, 1e-3, 10, None, None)


def _cmd(shards: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "train.cli", "run", str(shards), "--model", "kgclip-tiny-64", "--out", str(out), "--steps", "3",
            "--batch-size", "4", "--clusters-per-batch", "2", *extra]


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", COLUMNS="120", PYTHONPATH=str(ROOT))


def test_a_terminal_gets_a_live_line(coco_shards: Path, tmp_path: Path):
    master, slave = pty.openpty()
    p = subprocess.Popen(_cmd(coco_shards, tmp_path / "run"), stdin=slave, stdout=slave, stderr=slave,
                         env=_env(), cwd=ROOT)
    os.close(slave)
    chunks = []
    while True:
        r, _, _ = select.select([master], [], [], 300)
        if not r:
            p.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert p.wait(timeout=60) == 0, b"".join(chunks)[-3000:]
    os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))
    assert re.search(r"train .*3/3 .*loss \d+\.\d{4}\s+lr \d\.\d\de-\d\d\s+[\d,]+ img/s\s+AHNM β", text), text[-2000:]
    assert "\r" in text  # redrawn in place, not one line per step
    assert "train: step" not in text  # the plain lines are for pipes and files


def test_a_pipe_gets_plain_lines_and_quiet_gets_none(coco_shards: Path, tmp_path: Path):
    r = subprocess.run(_cmd(coco_shards, tmp_path / "run"), capture_output=True, text=True, env=_env(), cwd=ROOT,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("train: step")]
    assert lines[0].startswith("train: step 1/3 (33 %)") and lines[-1].startswith("train: step 3/3 (100 %)"), lines
    assert all(" loss " in ln and " img/s" in ln and "ETA" in ln for ln in lines)
    # one random-init warning, ours; none of open_clip's ten INFO lines per model
    assert r.stderr.count("RANDOM INIT") == 1 and "No pretrained weights loaded" not in r.stderr, r.stderr
    assert "INFO root" not in r.stderr, r.stderr
    q = subprocess.run(_cmd(coco_shards, tmp_path / "quiet", "--quiet"), capture_output=True, text=True, env=_env(),
                       cwd=ROOT, timeout=600)
    assert q.returncode == 0, q.stderr[-3000:]
    assert "train: step" not in q.stderr and '"steps": 3' in q.stdout
