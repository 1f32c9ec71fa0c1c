"""DDP: 2 gloo processes on CPU give the single-process loss (and gradient) of the global batch."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from train.config import TrainConfig

LOSSES = ("fair-siglip", "clip", "siglip")


def _metas():
    """Two ranks' batch metadata: unequal text counts, KG negatives, tags, a cross-rank duplicate."""
    m0 = {"owner": [0, 1, 2, 0, 1, 0, 2], "role": [0, 0, 0, 1, 1, 2, 2], "neg_type": [-1, -1, -1, -1, -1, 0, 3],
          "text_norm": ["a dog", "a cat", "two men", "dog on grass", "a cat sleeping", "a dog on a car", "x"],
          "keys": ["a", "b", "c"], "near_dups": [["e"], [], []], "sensitive": [{"g": "m"}, {"g": "f"}, {}],
          "weight": [1.0, 0.5, 2.0]}
    m1 = {"owner": [0, 1, 2, 0, 2], "role": [0, 0, 0, 2, 1], "neg_type": [-1, -1, -1, 5, -1],
          "text_norm": ["a dog", "a bird", "a man", "a cat on a dog", "a tall man"],
          "keys": ["d", "e", "f"], "near_dups": [[], [], []], "sensitive": [{"g": "f"}, {}, {"g": "m"}],
          "weight": [1.0, 1.0, 1.0]}
    return [m0, m1]


def _features(seed=0):
    g = torch.Generator().manual_seed(seed)
    img = F.normalize(torch.randn(6, 16, generator=g), dim=-1)
    txt = F.normalize(torch.randn(12, 16, generator=g), dim=-1)
    return img, txt


def _cfg(loss):
    return TrainConfig(loss=loss, negatives="ahnm", fair_lambda=0.5)


def _worker(rank, world, port, q):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for loss in LOSSES:
            _rank_loss(rank, world, loss, q)
        dist.barrier()  # both ranks done before either tears gloo down (a rank left mid-teardown can abort)
    finally:
        dist.destroy_process_group()
    # Gloo's worker threads can still be joinable when the interpreter finalises and abort the process
    # ('terminate called without an active exception', pytorch#190489); the results are in the queue, so
    # flush it and leave without running C++ static destructors. An exception above still exits 1.
    q.close()
    q.join_thread()
    os._exit(0)


def _rank_loss(rank, world, loss, q):
    from train import step

    img, txt = _features()
    img_l = img[rank * 3:(rank + 1) * 3].clone().requires_grad_()
    txt_l = (txt[:7] if rank == 0 else txt[7:]).clone().requires_grad_()
    scale, bias = torch.tensor(10.0), torch.tensor(-5.0)
    gi, gt = step.gather_cat(img_l), step.gather_cat(txt_l)
    metas = step.gather_meta(_metas()[rank])
    total, _, _ = step.loss_from_features(gi, gt, scale, bias, metas, _cfg(loss), 0.7)
    total.backward()
    # the all_gather backward sums over ranks; DDP's gradient averaging divides by world
    q.put((loss, rank, total.item(), (img_l.grad / world).tolist(), (txt_l.grad / world).tolist()))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_ranks_equal_single_process():
    from train import step

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, q)) for r in range(2)]
    for p in procs:
        p.start()
    res = sorted((q.get(timeout=120) for _ in range(2 * len(LOSSES))), key=lambda r: (r[0], r[1]))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for loss, rank, total, gi, gt in res:
        img, txt = _features()
        img.requires_grad_(), txt.requires_grad_()
        ref, _, _ = step.loss_from_features(img, txt, torch.tensor(10.0), torch.tensor(-5.0), _metas(),
                                            _cfg(loss), 0.7)
        ref.backward()
        gi, gt = torch.tensor(gi), torch.tensor(gt)
        assert total == pytest.approx(ref.item(), rel=1e-6)
        assert torch.allclose(gi, img.grad[rank * 3:(rank + 1) * 3], atol=1e-6)
        assert torch.allclose(gt, txt.grad[:7] if rank == 0 else txt.grad[7:], atol=1e-6)


@pytest.mark.slow
def test_torchrun_two_processes_end_to_end(coco_shards, tmp_path):
    """`train run` under torchrun (gloo, CPU): shards split by node, loss over the global batch."""
    import json
    import subprocess
    import sys

    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
                        "-m", "train.cli", "run", str(coco_shards), "--model", "kgclip-tiny-64", "--out", str(out), "--steps", "2",
                        "--batch-size", "4", "--clusters-per-batch", "2"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    recs = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in recs] == [1, 2]
    assert all(x["n_images"] == 8 for x in recs)  # 2 ranks × batch 4, one loss over all 8
    ck = torch.load(out / "latest.pt", weights_only=True)
    assert isinstance(ck["rng"], list) and len(ck["rng"]) == 2 and len(ck["data"]) == 2
