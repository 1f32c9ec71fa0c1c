"""The stage-2 job: kgaug table -> embed -> cluster -> kNN -> shards, with caches and provenance.

Each step caches its result under the cache folder (default `OUT/embeddings/`) keyed by a
fingerprint of its inputs, so `clusterbuild shard` rerun after a crash reuses the embeddings and the
clusters and only writes the shards that are missing.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from clusterbuild import cluster, contract, graphvec, images
from clusterbuild import embed as embedding
from clusterbuild import write as shard_writer
from clusterbuild.knn import DEFAULT_DUP_THRESHOLD, DEFAULT_KNN, nearest_others
from kgclip.atomic import atomic_write_bytes, atomic_write_json

CLUSTERS_FILE = "clusters.npz"
CLUSTERS_META = "clusters.json"
CENTROIDS_FILE = "centroids.npy"
CLUSTER_ON = ("auto", "image", "graph")
GRAPH_SHARE = 0.9
MAX_LISTED_SKIPS = 1000


@dataclass
class Options:
    input: Path
    out: Path
    model: str = "ViT-B-32"
    pretrained: str | None = None
    clusters: int | None = None
    cluster_size: int | None = None
    cluster_on: str = "auto"  # image | graph | auto (graph when >= GRAPH_SHARE of the rows have a scene graph
    #                           and the graphs use more than one word set)
    knn: int = DEFAULT_KNN
    dup_threshold: float = DEFAULT_DUP_THRESHOLD
    samples_per_shard: int = 10000
    seed: int = 0
    device: str = "cpu"
    batch_size: int = 64
    workers: int = 0
    niter: int = cluster.DEFAULT_NITER
    max_points_per_centroid: int = cluster.DEFAULT_MAX_POINTS_PER_CENTROID
    max_side: int = images.DEFAULT_MAX_SIDE
    max_pixels: int = images.DEFAULT_MAX_PIXELS
    balance_attribute: str | None = None
    balance_max_ratio: float = 5.0
    chunk_rows: int = embedding.DEFAULT_CHUNK_ROWS
    cache: Path | None = None
    overwrite: bool = False
    progress: bool = True
    timings: dict = field(default_factory=dict)

    @property
    def cache_dir(self) -> Path:
        return Path(self.cache) if self.cache else Path(self.out) / "embeddings"


def load_rows(folder: Path) -> list[dict]:
    from kgaug.table import is_kgaug_output, read_rows

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (expected a `kgaug build` output)")
    if not is_kgaug_output(folder):
        raise FileNotFoundError(f"{folder} is not a kgaug build output: no table/*.parquet "
                                f"(run `kgaug build ... --out {folder}` first)")
    return list(read_rows(folder))


def precheck(opts: Options, rows: list[dict]) -> None:
    """What can be known before embedding: rows exist, and at least one has an image file on disk
    (else nothing could be written); the reasons grouped and counted."""
    src = Path(opts.input)
    if not rows:
        raise ValueError(f"{src}: the table has no rows (what kgaug build skipped is in {src / 'report.json'})")
    reasons: Counter = Counter()
    for r in rows:
        img = r.get("image")
        if not img:
            reasons["row without an image path (a table built without images: kgaug build --images DIR)"] += 1
        elif not Path(img).is_file():
            reasons[f"image file not found under {Path(img).parent}"] += 1
    if sum(reasons.values()) == len(rows):
        raise ValueError(f"{src}: no row has an image file, nothing to shard: "
                         + "; ".join(f"{n} × {why}" for why, n in reasons.most_common(3)))
    # A folder holding the shard set of other inputs or options is refused now, not after the embedding
    # (`write.check_or_claim` checks the plan itself once it exists; an interrupted run has no _info.json).
    out = Path(opts.out)
    existing = contract.list_shards(out) if out.is_dir() else []
    if existing and not opts.overwrite and (out / contract.INFO_FILE).is_file():
        try:
            old = json.loads((out / contract.INFO_FILE).read_text())
        except ValueError:
            old = {}
        now = json.loads(json.dumps(options_record(opts)))
        was = old.get("options") or {}
        changed = [k for k in SHAPING if was.get(k) != now.get(k)]
        if old.get("input") != str(src.resolve()) or changed:
            raise FileExistsError(f"{out} already holds a shard set from other inputs or options "
                                  f"({len(existing)} shards); use --overwrite or another --out folder")


# The options that change what a shard set holds (device, batch size, workers, the cache place do not).
SHAPING = ("model", "pretrained", "clusters", "cluster_size", "cluster_on", "knn", "dup_threshold",
           "samples_per_shard", "seed", "niter", "max_points_per_centroid", "max_side", "max_pixels",
           "balance_attribute", "balance_max_ratio")


def options_record(opts: Options) -> dict:
    """The options `_info.json` records (not timings, the display, nor --overwrite)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()
            if k not in ("timings", "progress", "overwrite")}


def resolve_device(device: str, log: Callable[[str], None]) -> tuple[str, bool]:
    """(torch device, FAISS on GPU?) — `cuda` falls back to CPU, saying so, where it is missing."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, not {device!r}")
    if device == "cpu":
        return "cpu", False
    import torch

    torch_dev = "cuda" if torch.cuda.is_available() else "cpu"
    if torch_dev == "cpu":
        log("WARNING: --device cuda but torch sees no GPU: embedding on CPU")
    gpus = cluster.gpu_available()
    if gpus:
        log(f"FAISS: using {gpus} GPU(s) for k-means and kNN")
    else:
        log("FAISS: no GPU support in this faiss build (faiss-cpu?) or no GPU: k-means and kNN on CPU")
    return torch_dev, bool(gpus)


def load_model(opts: Options, device: str, log: Callable[[str], None]):
    import torch

    from kgclip import models

    torch.manual_seed(opts.seed)  # a random-init model must be the same model on a rerun
    try:
        loaded = models.create(opts.model, opts.pretrained, device=device)
    except (RuntimeError, OSError, ValueError) as e:
        raise RuntimeError(f"could not create model {opts.model!r} with pretrained={opts.pretrained!r}: {e} "
                           "(offline? give a local checkpoint path, or --pretrained none for random init)") from e
    if loaded.random_init:
        log(f"WARNING: {models.RANDOM_INIT_WARNING}")
    return loaded


def run_embed(opts: Options, rows: list[dict], log: Callable[[str], None] = print) -> embedding.Embeddings:
    t = time.perf_counter()
    device, _ = resolve_device(opts.device, log)
    loaded = load_model(opts, device, log)
    erows = [embedding.embed_row(r) for r in rows]
    emb = embedding.embed_rows(erows, loaded, opts.cache_dir, device=device, batch_size=opts.batch_size,
                       chunk_rows=opts.chunk_rows, max_side=opts.max_side, max_pixels=opts.max_pixels,
                       workers=opts.workers, progress=opts.progress,
                       log=log)
    emb.manifest["random_init"] = loaded.random_init
    opts.timings["embed_s"] = round(time.perf_counter() - t, 3)
    return emb


@dataclass
class Clustering:
    rows_ok: list[int]
    skipped: dict[int, str]
    assign: np.ndarray
    centroids: np.ndarray
    knn_index: np.ndarray
    knn_sim: np.ndarray
    near_dup: np.ndarray
    params: dict


def _save_npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def run_cluster(opts: Options, rows: list[dict], emb: embedding.Embeddings,
                log: Callable[[str], None] = print) -> Clustering:
    """k-means over the rows that can be written, then their kNN; cached next to the embeddings."""
    rows_ok, skipped = shard_writer.eligible(rows, emb.image_status)
    if not rows_ok:
        raise ValueError(f"no usable rows in {opts.input}: every row was skipped "
                         f"({dict(Counter(skipped.values()))})")
    on = cluster_space(opts.cluster_on, [rows[i] for i in rows_ok])
    xg = graphvec.graph_vectors([rows[i] for i in rows_ok]) if on == "graph" else None
    k, note = cluster.choose_k(len(rows_ok), opts.clusters, opts.cluster_size)
    if xg is not None and opts.cluster_on == "auto" and k > 1 and graphvec.distinct_rows(xg) < 2:
        log("WARNING: --cluster-on auto: every scene graph uses the same words, so graph clusters would be one; "
            "clustering on image embeddings")
        on, xg = "image", None
    if xg is not None:
        distinct = graphvec.distinct_rows(xg)
        if k > distinct:
            note = (note + "; " if note else "") + (f"{k} clusters asked but the scene graphs use only {distinct} "
                                                    f"distinct word sets: k={distinct}")
            k = distinct
    if note:
        log(f"WARNING: {note}")
    _, use_gpu = resolve_device(opts.device, lambda _m: None)
    fp = {"embeddings": emb.manifest.get("fingerprint"), "cluster_on": on, "rows_ok": hashlib.sha256(
          np.asarray(rows_ok, np.int64).tobytes()).hexdigest(), "k": k, "seed": opts.seed, "niter": opts.niter,
          "max_points_per_centroid": opts.max_points_per_centroid, "knn": opts.knn,
          "dup_threshold": opts.dup_threshold}
    cache = opts.cache_dir
    try:
        meta = json.loads((cache / CLUSTERS_META).read_text())
        if meta.get("fingerprint") == fp:
            with np.load(cache / CLUSTERS_FILE) as z:
                log(f"clusters: reusing {cache / CLUSTERS_FILE} (k={k})")
                return Clustering(rows_ok, skipped, z["assign"], z["centroids"], z["knn_index"], z["knn_sim"],
                                  z["near_dup"], meta["params"])
    except (OSError, ValueError, KeyError):
        pass
    x = cluster.normalize(emb.cluster_vectors()[rows_ok])
    t = time.perf_counter()
    km = cluster.spherical_kmeans(x if xg is None else xg, k, niter=opts.niter, seed=opts.seed,
                             max_points_per_centroid=opts.max_points_per_centroid, use_gpu=use_gpu,
                             normalized=True, distinct=xg is not None)
    opts.timings["cluster_s"] = round(time.perf_counter() - t, 3)
    if km.params["few_points"]:
        n_fit = km.params["fit_on_distinct_rows"] or km.params["n"]
        log(f"note: {n_fit} points for {k} clusters (fewer than {cluster.FAISS_MIN_POINTS_PER_CENTROID} per cluster): "
            "clusters may be uneven; fine for small tests, raise --cluster-size for fewer clusters")
    t = time.perf_counter()
    nn = nearest_others(x, opts.knn, opts.dup_threshold, use_gpu=use_gpu, normalized=True)
    opts.timings["knn_s"] = round(time.perf_counter() - t, 3)
    sizes = km.sizes()
    params = dict(km.params, cluster_on=on, k_requested=opts.clusters, cluster_size_target=opts.cluster_size,
                  k_note=note,
                  cluster_sizes={"min": int(sizes.min()), "max": int(sizes.max()), "mean": float(sizes.mean()),
                                 "empty": int((sizes == 0).sum())},
                  knn={"k": opts.knn, "dup_threshold": opts.dup_threshold,
                       "near_duplicate_pairs": int(nn.near_duplicate.sum()),
                       "rows_with_near_duplicates": int(nn.near_duplicate.any(axis=1).sum())})
    buf = io.BytesIO()
    np.savez(buf, assign=km.assign, centroids=km.centroids, knn_index=nn.index, knn_sim=nn.similarity,
             near_dup=nn.near_duplicate)
    cache.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(cache / CLUSTERS_FILE, buf.getvalue())
    atomic_write_json(cache / CLUSTERS_META, {"fingerprint": fp, "params": params})
    log(f"clusters: k={k} over {len(rows_ok)} samples (sizes {params['cluster_sizes']['min']}.."
        f"{params['cluster_sizes']['max']}), {params['knn']['near_duplicate_pairs']} near-duplicate pairs")
    return Clustering(rows_ok, skipped, km.assign, km.centroids, nn.index, nn.similarity, nn.near_duplicate,
                      params)


def cluster_space(cluster_on: str, rows: list[dict]) -> str:
    """`image` or `graph` for `--cluster-on` (auto: graph when most rows carry a scene graph). Image
    embeddings group what looks alike; scene-graph words group what is *described* alike, so that the
    in-batch negatives differ in binding and relations (clusterbuild.graphvec)."""
    if cluster_on not in CLUSTER_ON:
        raise ValueError(f"--cluster-on must be one of {', '.join(CLUSTER_ON)}, got {cluster_on!r}")
    if cluster_on != "auto":
        return cluster_on
    with_graph = sum(graphvec.has_graph(r) for r in rows)
    return "graph" if rows and with_graph >= GRAPH_SHARE * len(rows) else "image"


def apply_balance(opts: Options, rows: list[dict], plan: shard_writer.Plan, log: Callable[[str], None]) -> dict | None:
    """M4-style weights for `--balance-attribute` (see clusterbuild.balance); None when not asked."""
    if not opts.balance_attribute:
        return None
    from clusterbuild import balance

    attr = opts.balance_attribute
    groups = [(rows[r].get("sensitive") or {}).get(attr) for r in plan.order]
    if not any(g is not None for g in groups):
        log(f"WARNING: --balance-attribute {attr}: no row is tagged with it; all weights stay 1")
    weights = balance.group_weights(groups, [plan.cluster_id[r] for r in plan.order], opts.balance_max_ratio)
    plan.weights = dict(zip(plan.order, weights))
    out = {"attribute": attr, "max_ratio": opts.balance_max_ratio, **balance.summary(groups, weights)}
    log(f"balance: {attr} shares {out['groups']}")
    return out


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("kgclip", "open_clip_torch", "torch", "faiss-cpu", "faiss-gpu-cu12", "webdataset", "pyarrow",
                 "pillow", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def run_shard(opts: Options, log: Callable[[str], None] = print) -> dict:
    """The whole job; returns the `_info.json` it wrote."""
    t0 = time.perf_counter()
    if opts.samples_per_shard < 1:
        raise ValueError("--samples-per-shard must be >= 1")
    rows = load_rows(opts.input)
    precheck(opts, rows)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    emb = run_embed(opts, rows, log)
    cl = run_cluster(opts, rows, emb, log)
    plan = shard_writer.make_plan(cl.rows_ok, cl.assign, cl.knn_index, cl.near_dup, opts.seed, cl.skipped)
    balance_info = apply_balance(opts, rows, plan, log)
    keys = [r.get("key") for r in rows]
    shape = {"samples_per_shard": opts.samples_per_shard, "max_side": opts.max_side,
             "max_pixels": opts.max_pixels, "schema": contract.SCHEMA}
    shard_writer.check_or_claim(out, plan.digest(keys, shape), opts.overwrite)
    stale = shard_writer.clean_temp_files(out)
    if stale:
        log(f"removed {stale} temp file(s) left by an interrupted run")
    t = time.perf_counter()
    sizes = shard_writer.write_shards(out, rows, plan, opts.samples_per_shard, opts.max_side, opts.max_pixels,
                           progress=opts.progress, log=log)
    opts.timings["write_s"] = round(time.perf_counter() - t, 3)
    atomic_write_bytes(out / CENTROIDS_FILE, _save_npy_bytes(cl.centroids.astype(np.float32)))
    opts.timings["total_s"] = round(time.perf_counter() - t0, 3)
    info = make_info(opts, rows, emb, cl, plan, sizes, shard_writer.shard_totals(out, list(sizes)))
    info["balance"] = balance_info
    atomic_write_json(out / contract.INFO_FILE, info)
    log(f"wrote {info['num_samples']} samples in {info['num_shards']} shards to {out} "
        f"({info['counts']['skipped']} rows skipped: {info['counts']['skipped_by_reason']})")
    return info


def make_info(opts: Options, rows: list[dict], emb: embedding.Embeddings, cl: Clustering, plan: shard_writer.Plan,
              sizes: dict[str, int], totals: dict) -> dict:
    from kgclip import models

    by_reason = Counter(plan.skipped.values())
    skipped_rows = [{"row": i, "key": rows[i].get("key"), "image": rows[i].get("image"), "reason": why}
                    for i, why in sorted(plan.skipped.items())][:MAX_LISTED_SKIPS]
    random_init = bool(emb.manifest.get("random_init"))
    opt = options_record(opts)
    return {
        "schema": contract.SCHEMA,
        "num_samples": sum(sizes.values()),
        "num_shards": len(sizes),
        "shards": contract.brace_pattern(list(sizes)) if sizes else None,
        "input": str(Path(opts.input).resolve()),
        "model": {"name": opts.model, "pretrained": opts.pretrained, "random_init": random_init,
                  "warning": models.RANDOM_INIT_WARNING if random_init else None},
        "seed": opts.seed,
        "options": opt,
        "embeddings": emb.manifest.get("counts"),
        "clusters": cl.params,
        "counts": {"rows": len(rows), "written": sum(sizes.values()), "skipped": len(plan.skipped),
                   "skipped_by_reason": dict(sorted(by_reason.items())),
                   "text_only_rows": int((~emb.has_image).sum()), **totals},
        "skipped_rows": skipped_rows,
        "versions": versions(),
        "timings": dict(opts.timings),
    }
