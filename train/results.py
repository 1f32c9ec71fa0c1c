"""The demo / ablation report: one content model rendered as Markdown and as a self-contained HTML page.

Pure rendering: callers hand in plain data (results, metric rows, sample rows) and a folder for the
figures; nothing here trains or evaluates. Edits in hard negatives are colour-coded by negative type.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kgclip.atomic import atomic_write_text

SUBSETS = ("swap_att", "replace_att", "replace_rel", "swap_obj", "replace_obj", "add_obj", "add_att")
ZEROSHOT = ("zeroshot_shape", "zeroshot_colour")
RESULT_KEYS = SUBSETS + ZEROSHOT



def results_from_eval(eval_json: dict[str, Any]) -> dict[str, float]:
    """{subset_or_metric: accuracy in [0, 1]} from a `train eval` JSON, whatever its nesting: takes the
    first number found under each SugarCrepe subset name and for the zero-shot top-1 values."""
    out: dict[str, float] = {}

    def first_number(v: Any) -> float | None:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, dict):
            for k in ("accuracy", "acc", "top1", "top-1", "value"):
                if k in v:
                    return first_number(v[k])
            for x in v.values():
                n = first_number(x)
                if n is not None:
                    return n
        return None

    def walk(d: Any, path: tuple[str, ...] = ()) -> None:
        if not isinstance(d, dict):
            return
        for k, v in d.items():
            if k in SUBSETS and k not in out:
                n = first_number(v)
                if n is not None:
                    out[k] = n / 100.0 if n > 1.0 else n
            else:
                walk(v, path + (k,))

    walk(eval_json)
    return out


def mean_std(values: list[float]) -> dict[str, Any]:
    n = len(values)
    m = sum(values) / n if n else float("nan")
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": m, "std": s, "seeds": list(values)}


def plot_curves(rows: dict[str, list[dict[str, Any]]], keys: Iterable[str], path: Path, title: str,
                xlabel: str = "step") -> Path | None:
    """One panel per key, one line per method; rows[method] is a list of {'step': s, key: v}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in keys if any(k in r for rs in rows.values() for r in rs)]
    if not keys:
        return None
    cols = min(3, len(keys))
    nrows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 2.8 * nrows), squeeze=False)
    # 10 colours x 3 line styles: every method keeps its own look when there are more than 10
    colours, styles = plt.get_cmap("tab10").colors, ("-", "--", ":")
    look = {m: (colours[i % 10], styles[(i // 10) % 3]) for i, m in enumerate(rows)}
    for ax, key in zip(axes.flat, keys, strict=False):
        for method, rs in rows.items():
            pts = [(r["step"], r[key]) for r in rs if key in r and isinstance(r[key], (int, float))]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=method, lw=1.2, color=look[method][0], ls=look[method][1])
        ax.set_title(key, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    if len(rows) > 6:  # one legend for all panels, outside them
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(7, len(rows)), fontsize=7)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout(rect=(0, 0.03 + 0.025 * math.ceil(len(rows) / 7), 1, 1))
    else:
        axes.flat[0].legend(fontsize=7)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def results_table(results: dict[str, dict[str, Any]], keys: Iterable[str] = RESULT_KEYS) -> list[list[str]]:
    """Header + one row per method; values are floats or {mean, std}; shown in percent."""
    keys = [k for k in keys if any(k in r for r in results.values())]

    def cell(v: Any, key: str) -> str:
        pct = key in RESULT_KEYS  # accuracies in %; other metrics (the bias gap) as they are
        f = (lambda x: f"{100 * x:.1f}") if pct else (lambda x: f"{x:+.4f}")
        if isinstance(v, dict) and "mean" in v:
            return f"{f(v['mean'])} ± {f(v['std']).lstrip('+')}"
        if isinstance(v, (int, float)):
            return f(v)
        return "–"

    return [["method", *keys]] + [[m, *(cell(r.get(k), k) for k in keys)] for m, r in results.items()]


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
