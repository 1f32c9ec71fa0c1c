"""Run outputs: `metrics.jsonl` (one object per logged step), plots and the final summary."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

METRICS = "metrics.jsonl"
SUMMARY = "summary.json"


def _clean(x: Any) -> Any:
    """JSON-safe: tensors -> numbers, NaN/inf -> None (JSON has no NaN)."""
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


class MetricsLog:
    """Appends one JSON line per logged step; on resume, drops lines past the resumed step."""

    def __init__(self, out: Path, resume_step: int | None = None):
        self.path = Path(out) / METRICS
        if resume_step is not None and self.path.exists():
            keep = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln)["step"] <= resume_step]
            self.path.write_text("".join(ln + "\n" for ln in keep))
        elif resume_step is None and self.path.exists():
            self.path.unlink()
        self._f = open(self.path, "a")

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(_clean(record), sort_keys=True) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read(out: Path) -> list[dict[str, Any]]:
    p = Path(out) / METRICS
    return [json.loads(ln) for ln in p.read_text().splitlines() if ln] if p.exists() else []


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    if not records:
        return {"steps": 0}
    losses = [r["loss"] for r in records if r.get("loss") is not None]
    k = max(1, len(losses) // 10)
    ips = [r["images_per_s"] for r in records[1:] if r.get("images_per_s")]
    return {"steps": records[-1]["step"], "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "loss_first10pct": sum(losses[:k]) / k if losses else None,
            "loss_last10pct": sum(losses[-k:]) / k if losses else None,
            "images_per_s": sum(ips) / len(ips) if ips else None,
            "final_logit_scale": records[-1].get("logit_scale"), "final_logit_bias": records[-1].get("logit_bias")}


def plot(out: Path) -> list[str]:
    """plots/loss.png, plots/margin_hist.png, plots/ahnm_shares.png from metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    recs = read(out)
    if not recs:
        return []
    d = Path(out) / "plots"
    d.mkdir(parents=True, exist_ok=True)
    steps = [r["step"] for r in recs]
    written = []

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, [r.get("loss") for r in recs], label="total")
    for part in sorted({p for r in recs for p in (r.get("loss_parts") or {})}):
        ax.plot(steps, [(r.get("loss_parts") or {}).get(part) for r in recs], label=part, alpha=0.7)
    ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.legend(), ax.set_title("loss")
    fig.tight_layout(), fig.savefig(d / "loss.png", dpi=100), plt.close(fig)
    written.append("loss.png")

    hists = [((r.get("ahnm") or {}).get("margin_hist")) for r in recs]
    if any(hists):
        bins = len(next(h for h in hists if h))
        mat = np.array([h if h else [0] * bins for h in hists], dtype=float).T
        mat = mat / np.maximum(mat.sum(0, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        # each logged step a column of width 1 (a one-step run is one column, not a zero-width image)
        ax.imshow(mat, aspect="auto", origin="lower", extent=(steps[0] - 0.5, steps[-1] + 0.5, -1, 1), cmap="viridis")
        ax.set_xlabel("step"), ax.set_ylabel("margin (cos neg − cos pos)")
        ax.set_title("AHNM negative margin histogram")
        fig.tight_layout(), fig.savefig(d / "margin_hist.png", dpi=100), plt.close(fig)
        written.append("margin_hist.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in ("share_masked", "share_turned_positive", "share_capped", "share_faded"):
        ys = [(r.get("ahnm") or {}).get(k) for r in recs]
        if any(y is not None for y in ys):
            ax.plot(steps, [y if y is not None else float("nan") for y in ys], label=k)
    ax.set_xlabel("step"), ax.set_ylabel("share of negatives"), ax.set_title("AHNM guard and weights")
    if ax.lines:
        ax.legend()
    fig.tight_layout(), fig.savefig(d / "ahnm_shares.png", dpi=100), plt.close(fig)
    written.append("ahnm_shares.png")
    return written


def report_page(out: Path, summary: dict[str, Any], records: list[dict[str, Any]]) -> Path:
    """OUT/report.html: the run on one self-contained page — its summary, the curves of plots/, and
    AHNM's statistics at the last logged step (`train eval` results, when OUT/eval.json exists)."""
    import json

    from kgclip.page import Report

    out = Path(out)
    page = Report(f"train run — {summary.get('model')}, {summary.get('loss_kind')}, {summary.get('negatives')} "
                  f"negatives, {summary.get('batching')} batches", out)
    keys = ("steps", "first_loss", "last_loss", "loss_first10pct", "loss_last10pct", "images_per_s",
            "final_logit_scale", "final_logit_bias", "trainable_params", "params", "seconds", "resumed_from",
            "checkpoint", "export")
    page.table([["", "value"]] + [[k, _cell(summary.get(k))] for k in keys if summary.get(k) is not None])
    for name in summary.get("plots") or []:  # file names in OUT/plots
        page.image(out / "plots" / name, Path(name).stem)
    last = (records[-1].get("ahnm") or {}) if records else {}
    flat = {k: v for k, v in last.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if flat:
        page.heading(f"AHNM at step {records[-1]['step']}")
        page.table([["statistic", "value"]] + [[k, _cell(v)] for k, v in sorted(flat.items())])
    ev = out / "eval.json"
    if ev.is_file():
        page.heading("train eval")
        page.para(json.dumps(json.loads(ev.read_text()), indent=1)[:4000])
    return page.write("report", markdown=False)[1]


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
