#!/usr/bin/env bash
# images/s of `train run` vs open_clip's own trainer, ViT-B-32, bf16, one NVIDIA GPU, same shards.
#
#   bash benchmarks/gpu.sh [STEPS] [BATCH]        (defaults 40 steps, batch 256; ~3-5 min in all)
#
# Needs only torch + torchvision (CUDA), Pillow, numpy, open_clip and this repo (on PYTHONPATH).
# Modules missing on a bare GPU image are taken, one by one, from $KGCLIP_GPU_DEPS (default
# .cache/gpu-deps/site: unpacked pure-python / cp312 wheels of open_clip_torch, regex, ftfy, ...).
# open_clip's trainer runs with webdataset 0.2.86 first on its path (it breaks on >= 0.2.96) and,
# if pandas is absent, an empty stand-in module (pandas is only used by its CSV dataset).
# Synthetic shards are written first (clusters, captions, hard negatives), then each trainer
# runs STEPS steps with 8 loader workers; the median step time after 10 warm-up steps is reported.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
STEPS=${1:-40}
BATCH=${2:-256}
DEPS=${KGCLIP_GPU_DEPS:-$ROOT/.cache/gpu-deps/site}
WDS_OLD=${KGCLIP_WDS_OLD:-$ROOT/.cache/gpu-deps/wds086}
[ -d "$WDS_OLD/webdataset" ] || WDS_OLD=$ROOT/.cache/webdataset-0.2.86
WORK=${KGCLIP_GPU_WORK:-$(mktemp -d)}
mkdir -p "$WORK/extra" "$WORK/stub"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
# CPU smoke test of this script: KGCLIP_GPU_DRYRUN=1 bash benchmarks/gpu.sh 12 16
if [ -n "${KGCLIP_GPU_DRYRUN:-}" ]; then
  MODEL=kgclip-tiny-64 DEVICE=cpu PREC=fp32 OC_PREC=fp32 WORKERS=2 OC_MODEL_ARGS="$ROOT/clusterbuild/model_configs"
else
  MODEL=ViT-B-32 DEVICE=cuda PREC=bf16 OC_PREC=amp_bf16 WORKERS=8 OC_MODEL_ARGS=""
fi

for mod in numpy PIL torchvision regex yaml ftfy wcwidth tqdm braceexpand open_clip open_clip_train; do
  if ! $PY -c "import $mod" 2>/dev/null; then
    if [ -e "$DEPS/$mod" ]; then
      ln -sfn "$DEPS/$mod" "$WORK/extra/$mod"
      [ "$mod" = yaml ] && [ -e "$DEPS/_yaml" ] && ln -sfn "$DEPS/_yaml" "$WORK/extra/_yaml"
      echo "gpu.sh: using carried $mod"
    else
      echo "gpu.sh: MISSING python module $mod (install it or set KGCLIP_GPU_DEPS)" >&2
    fi
  fi
done
$PY -c "import webdataset" 2>/dev/null || ln -sfn "$WDS_OLD/webdataset" "$WORK/extra/webdataset"
$PY -c "import pandas" 2>/dev/null || { mkdir -p "$WORK/stub/pandas"; echo "# stand-in: open_clip's CSV path only" > "$WORK/stub/pandas/__init__.py"; }
OURS_PATH="$ROOT:$WORK/extra"
OC_PATH="$WDS_OLD:$ROOT:$WORK/extra:$WORK/stub"
[ "$DEVICE" = cpu ] || $PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print('gpu.sh:', torch.__version__, torch.cuda.get_device_name(0))"

echo "gpu.sh: writing synthetic shards to $WORK/shards"
PYTHONPATH=$OURS_PATH $PY - "$WORK/shards" "$((STEPS * BATCH))" "$BATCH" <<'EOF'
import io, sys, random
from multiprocessing import Pool
from pathlib import Path
from PIL import Image, ImageDraw
from clusterbuild import contract as C, shardio

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220), "yellow": (230, 210, 40)}
SHAPES = ("square", "circle")

def sample(i):
    r = random.Random(i)
    im = Image.new("RGB", (256, 256), tuple(r.randrange(60, 200) for _ in range(3)))
    d = ImageDraw.Draw(im)
    (c1, c2), (s1, s2) = r.sample(list(COLOURS), 2), (r.choice(SHAPES), r.choice(SHAPES))
    for (c, s, x) in ((c1, s1, 30), (c2, s2, 150)):
        box = (x, 90, x + 80, 170)
        (d.rectangle if s == "square" else d.ellipse)(box, fill=COLOURS[c])
    buf = io.BytesIO(); im.save(buf, "JPEG", quality=90)
    cap = f"a {c1} {s1} left of a {c2} {s2}"
    negs = [{"type": "swap_att", "text": f"a {c2} {s1} left of a {c1} {s2}", "from": c1, "to": c2},
            {"type": "replace_rel", "text": f"a {c1} {s1} right of a {c2} {s2}", "from": "left of", "to": "right of"}]
    meta = C.make_meta(f"s{i:07d}", "synthetic", [cap, f"{c1} {s1} and {c2} {s2}"],
                       [{"text": f"a {c1} {s1}", "facts": []}], negs, cluster_id=(i // 16))
    return C.Sample(meta["key"], buf.getvalue(), "jpg", cap, meta)

out, n, per = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])  # one shard per batch: >= workers
out.mkdir(parents=True, exist_ok=True)
with Pool(16) as p:
    samples = p.map(sample, range(n), chunksize=64)
sizes = {}
for k in range(0, n, per):
    name = C.shard_name(k // per)
    shardio.atomic_write_bytes(out / name, shardio.tar_bytes(samples[k:k + per]))
    sizes[name] = len(samples[k:k + per])
shardio.write_sizes(out, sizes)
print(f"gpu.sh: {n} samples in {len(sizes)} shards")
EOF
LAST=$(printf '%06d' $((STEPS - 1)))
PATTERN="$WORK/shards/{000000..$LAST}.tar"

run_oc() {  # $1 name, $2 extra flag
  # the wrapper registers our tiny configs for the CPU dry run (open_clip only knows registered names)
  PYTHONPATH=$OC_PATH timeout 170 $PY -c "import sys, open_clip
if sys.argv[1]: open_clip.add_model_config(sys.argv[1])
from open_clip_train.main import main; main(sys.argv[2:])" "$OC_MODEL_ARGS" --train-data "$PATTERN" --dataset-type webdataset \
    --train-num-samples $((STEPS * BATCH)) --batch-size "$BATCH" --epochs 1 --model "$MODEL" --workers "$WORKERS" \
    --precision "$OC_PREC" --lr 5e-4 --warmup 10 --logs "$WORK/oc" --name "$1" --log-every-n-steps 1 \
    --save-frequency 0 --seed 0 $2 > "$WORK/$1.txt" 2>&1 || { echo "open_clip $1 failed:"; tail -20 "$WORK/$1.txt"; }
}
run_ours() {  # $1 name, rest: flags
  local name=$1; shift
  printf 'plots = false\nexport = false\n' > "$WORK/$name.toml"
  PYTHONPATH=$OURS_PATH timeout 170 $PY -m train.cli run "$WORK/shards" --out "$WORK/$name" --model "$MODEL" \
    --precision "$PREC" --device "$DEVICE" --batch-size "$BATCH" --steps "$STEPS" --workers "$WORKERS" --lr 5e-4 --seed 0 \
    --save-every 100000 --config "$WORK/$name.toml" "$@" > "$WORK/$name.txt" 2>&1 \
    || { echo "train run $name failed:"; tail -20 "$WORK/$name.txt"; }
}

run_oc oc-clip ""
run_oc oc-siglip "--siglip"
run_ours ours-clip --loss clip --negatives none --batching random --positives 1
run_ours ours-siglip --loss siglip --negatives none --batching random --positives 1
run_ours ours-full-1text --positives 1 --negatives-per-sample 0
run_ours ours-full

$PY - "$WORK" "$BATCH" "$MODEL" "$PREC" <<'EOF'
import json, re, statistics, sys
from pathlib import Path
w, B = Path(sys.argv[1]), int(sys.argv[2])
def oc(name):
    p = w / "oc" / name / "out.log"
    t = [float(x) for x in re.findall(r"Batch \(t\): ([0-9.]+)", p.read_text())] if p.exists() else []
    return B / statistics.median(t[10:]) if len(t) > 10 else None
def ours(name):
    p = w / name / "metrics.jsonl"
    r = [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []
    return statistics.median(x["images_per_s"] for x in r[10:]) if len(r) > 10 else None, \
        (statistics.median(x["n_texts"] for x in r) if r else None)
rows = [("clip (1 caption/image)", "ours-clip", "oc-clip"), ("siglip (1 caption/image)", "ours-siglip", "oc-siglip"),
        ("fair-siglip+ahnm+cluster, 1 text/image", "ours-full-1text", "oc-siglip"),
        ("fair-siglip+ahnm+cluster, defaults (2 pos + 2 KG neg)", "ours-full", "oc-siglip")]
print(f"\n{sys.argv[3]}, {sys.argv[4]}, batch {B}, median images/s after 10 warm-up steps (" + str(w) + ")")
print("| train run config | texts/step | ours img/s | open_clip img/s | ours/open_clip |")
print("|---|---|---|---|---|")
for label, o, r in rows:
    (a, t), b = ours(o), oc(r)
    f = lambda v: f"{v:.0f}" if v else "failed"
    print(f"| {label} | {t or '?'} | {f(a)} | {f(b)} | {a / b:.2f} |" if a and b else f"| {label} | {t} | {f(a)} | {f(b)} | - |")
EOF
