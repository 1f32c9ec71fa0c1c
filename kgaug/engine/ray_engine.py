"""The Ray engine: `kgaug build --engine ray` runs the per-image steps (kgaug/image.py) as Ray tasks
and actors, on a laptop (`ray.init` on this machine's cores) or a cluster (`--ray-address`).

- Pass 1 on a VG `scene_graphs.json`: one Ray task per byte range (`local.pass1_range`), taken back
  in range order and merged by the driver (`local.merge_ranges`): the report, the KG's counts (values
  and key order) and the spill equal a sequential read's. Caption sources are read by the driver and
  their caption batches parsed by Ray actors (one spaCy pipeline each, `RayParsePool`), taken back in
  order. VG with region phrases (read in lockstep with them) is read by the driver alone.
- Pass 2: the finished KG and generator are put once in the object store; a pool of actors (one per
  CPU Ray offers) each load them once (WordNet is re-read there) and turn chunks of the spill into
  Arrow tables, handed back in spill order; the driver writes the parts. The table is the local
  engine's, byte for byte.
- Tasks are retried by Ray when a worker dies (`max_retries`, `max_restarts`/`max_task_retries`
  on the actors); a range task rewrites its own spill file, a chunk is a pure function of its input,
  so a retry gives the same result.
Spill files live in the output folder, which every node must see (a shared filesystem).
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from kgaug.engine import local
from kgaug.engine.spill import chunks
from kgaug.kg import KG
from kgaug.negatives import Generator
from kgaug.report import Report
from kgaug.sources import InputError

INSTALL_HINT = "--engine ray needs Ray: pip install 'kgclip[ray]' (or pip install ray)"
RETRIES = 3  # per task (and per actor restart) when a worker process dies
# What workers must see as the driver does. KGAUG_RAY_FAULT=PATH (tests): the first pass-2 chunk any
# worker takes kills that worker process (once: PATH is created), so Ray's retry is exercised.
_ENV = ("NLTK_DATA", "PYTHONHASHSEED", "HF_HUB_OFFLINE", "KGAUG_RAY_FAULT")


def require_ray():
    """The `ray` module, or an InputError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return ray


class Session:
    """Ray for one build: connects (or starts a local Ray on `workers` CPUs, or this machine's), and
    shuts down only what it started."""

    def __init__(self, address: str | None = None, workers: int = 0) -> None:
        self.ray = require_ray()
        self.started = False
        if not self.ray.is_initialized():
            # Ray's C++ core logs, at error level, that restartable actors take their arguments from the
            # object store (ray-project/ray#53727): true of every pass-2 actor, and not an error here.
            # Failures still reach this process as Python exceptions.
            os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
            env = {k: os.environ[k] for k in _ENV if k in os.environ}
            kwargs: dict = {"runtime_env": {"env_vars": env}, "log_to_driver": False, "include_dashboard": False,
                            "logging_level": logging.ERROR}
            if address:
                kwargs["address"] = address
            elif workers:
                kwargs["num_cpus"] = workers
            self.ray.init(**kwargs)
            self.started = True

    def cpus(self) -> int:
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False


def ordered(ray, refs: Iterable, depth: int) -> Iterator:
    """The results of `refs` (object refs, made lazily) in their order, at most `depth` in flight."""
    inflight: collections.deque = collections.deque()
    for ref in refs:
        inflight.append(ref)
        if len(inflight) >= depth:
            yield ray.get(inflight.popleft())
    while inflight:
        yield ray.get(inflight.popleft())


def _fault_once() -> None:
    """KGAUG_RAY_FAULT=PATH: the first call in any process creates PATH and kills its process."""
    path = os.environ.get("KGAUG_RAY_FAULT")
    if not path:
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(1)


class RayParsePool(local.InOrderPool):
    """Caption batches parsed by Ray actors (one spaCy pipeline each), taken back in submission order
    (`local.InOrderPool`), so the parses, the report and the spill are the local engine's."""

    def __init__(self, engine: RayEngine, parser, workers: int) -> None:
        self.ray = engine._start()
        source = parser.report.source
        self.actors = [engine._parse_worker.remote(parser.model, parser.batch_size, source)
                       for _ in range(max(1, workers))]
        super().__init__(2 * len(self.actors))
        self.sent = 0

    def _send(self, records: list):
        actor = self.actors[self.sent % len(self.actors)]
        self.sent += 1
        return actor.parse.remote(records)

    def _get(self, handle) -> tuple:
        return self.ray.get(handle)

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)


class RayEngine:
    """`pass1` and `pass2` with the local engine's signatures (kgaug/build.py picks one). Ray is
    started (or joined) at its first use; nothing is forked once it runs."""

    def __init__(self, address: str | None = None, workers: int = 0) -> None:
        require_ray()
        self.address, self.workers = address, workers
        self.session: Session | None = None
        self.cpus_used = 0
        self.info: dict = {"name": "ray", "pass1": "local"}  # what report.json says of the run

    def _start(self):
        if self.session is None:
            self.session = Session(self.address, self.workers)
            ray = self.session.ray
            self._range = ray.remote(max_retries=RETRIES)(local.pass1_range)

            @ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES)
            class RowWorker:
                """Holds the generator and its KG (sent once); turns chunks of spilled images into tables."""

                def __init__(self, gen: Generator, cfg) -> None:
                    self.gen, self.cfg = gen, cfg

                def rows(self, blobs: list[bytes]) -> tuple:
                    _fault_once()
                    return local.chunk_rows(blobs, self.gen.kg, self.gen, self.cfg)

            @ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES)
            class ParseWorker:
                """Holds a spaCy pipeline (loaded once); parses batches of caption records."""

                def __init__(self, model: str, batch_size: int, source: str) -> None:
                    from kgaug.image import CaptionParser

                    self.source = source
                    self.parser = CaptionParser(model, batch_size, Report(source, {}))

                def parse(self, records: list) -> tuple:
                    self.parser.report = Report(self.source, {})
                    return list(self.parser.run(records)), self.parser.report

            self._worker = RowWorker
            self._parse_worker = ParseWorker
            self.cpus_used = self.info["cpus"] = self.session.cpus()
        return self.session.ray

    def close(self) -> None:
        if self.session is not None:
            self.session.close()

    def pass1(self, cfg, read, kg: KG, report: Report, spill: Path, bar, beside=None) -> int:
        planned = None
        if local.reads_in_ranges(cfg):
            self._start()
            planned = local.parallel_plan(cfg, workers=max(2, self.cpus_used))
        if cfg.source in ("coco", "captions", "webdataset"):  # read here, parsed by Ray actors
            self._start()
            self.info["pass1"] = f"read here, captions parsed by ray: {self.cpus_used} actors"
            return local.pass1(cfg, read, kg, report, spill, bar, beside,
                               parse_pool=lambda parser, workers: RayParsePool(self, parser, workers),
                               workers=self.cpus_used)
        if planned is None:  # VG read in lockstep with region phrases, or too small: read here
            return local.pass1(cfg, read, kg, report, spill, bar, beside)
        ray, workers = self.session.ray, self.cpus_used
        skips, plan, _ = planned
        self.info["pass1"] = f"ray: {len(plan.starts)} byte ranges"
        plan_ref = ray.put(plan)
        refs = (self._range.remote(plan_ref, spill, i) for i in range(len(plan.starts)))
        if beside is not None:
            beside()
        return local.merge_ranges(kg, report, spill, bar, skips, plan, ordered(ray, refs, 2 * workers))

    def pass2(self, spill: Path, kg: KG, gen: Generator, cfg, report: Report, n: int) -> Iterator:
        ray = self._start()
        workers = max(1, min(self.cpus_used, -(-n // local.PASS2_CHUNK)))
        gen_ref = ray.put(gen)  # the generator holds the KG: both sent once
        actors = [self._worker.remote(gen_ref, cfg) for _ in range(workers)]
        self.info["pass2"] = f"ray: {workers} actors"
        try:
            refs = (actors[i % workers].rows.remote(blobs)
                    for i, blobs in enumerate(chunks(spill, local.PASS2_CHUNK)))
            yield from local.merge_chunks(ordered(ray, refs, 2 * workers), gen, report)
        finally:
            for a in actors:
                ray.kill(a)
