"""Progress displays shared by the three tools, to stderr: a bar with rate and ETA (rich) for counted
work (`progress_bar`), and the training display (`TrainProgress`): step, loss, lr, images/s, AHNM β
and ETA as a live line on a terminal, or one plain line every `every_s` seconds when stderr is a file or
a pipe (logs, CI, `nohup`). Both are no-ops when disabled (`--quiet`)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    def __init__(self, unit: str = "img") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"? {self.unit}/s" if speed is None else f"{speed:,.0f} {self.unit}/s", style="progress.data.speed")


class _Bar:
    def __init__(self, progress: Progress | None, task) -> None:
        self.progress, self.task = progress, task

    def advance(self, n: int = 1) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, n)


@contextmanager
def progress_bar(label: str, total: int | None, enabled: bool = True, console: Console | None = None,
                 unit: str = "img"):
    if not enabled:
        yield _Bar(None, None)
        return
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        console=console or Console(stderr=True), transient=False)
    with progress:
        task = progress.add_task(label, total=total)
        yield _Bar(progress, task)


def duration(seconds: float) -> str:
    """'42s', '3m05s', '2h07m'."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def train_line(step: int, total: int, loss: float, lr: float, images_per_s: float, beta: float | None,
               eta_s: float | None) -> str:
    """One plain progress line of training (pure)."""
    parts = [f"step {step}/{total} ({100 * step / max(total, 1):.0f} %)", f"loss {loss:.4f}", f"lr {lr:.2e}",
             f"{images_per_s:,.0f} img/s"]
    if beta is not None:
        parts.append(f"AHNM β {beta:.2f}")
    if eta_s is not None:
        parts.append(f"ETA {duration(eta_s)}")
    return "  ".join(parts)


class TrainProgress:
    """The training display. `update` after every optimizer step; `close` at the end (or on error).
    The rate and ETA count from the first step this run took (a resumed run starts at its checkpoint)."""

    def __init__(self, total: int, start: int = 0, enabled: bool = True, stream: TextIO | None = None,
                 every_s: float = 30.0, live: bool | None = None, label: str = "train") -> None:
        self.total, self.start, self.enabled, self.every_s, self.label = total, start, enabled, every_s, label
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.t0 = time.perf_counter()
        self.last_print = -1e18
        self.progress: Progress | None = None
        self.task = None
        if enabled and self.live:
            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                     TimeRemainingColumn(), console=Console(file=self.stream), transient=False)
            self.progress.start()
            self.task = self.progress.add_task(label, total=total, completed=start, stats="")

    def update(self, step: int, loss: float, lr: float, images_per_s: float, beta: float | None = None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        done = step - self.start
        eta = (now - self.t0) / done * (self.total - step) if done > 0 else None
        if self.progress is not None:
            stats = f"loss {loss:.4f}  lr {lr:.2e}  {images_per_s:,.0f} img/s" + (
                f"  AHNM β {beta:.2f}" if beta is not None else "")
            self.progress.update(self.task, completed=step, stats=stats)
            return
        if now - self.last_print >= self.every_s or step >= self.total or done == 1:
            self.last_print = now
            print(f"{self.label}: " + train_line(step, self.total, loss, lr, images_per_s, beta, eta),
                  file=self.stream, flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
