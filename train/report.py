"""The demo / ablation report: one content model rendered as Markdown and as a self-contained HTML page.

Pure rendering: callers hand in plain data (results, metric rows, sample rows) and a folder for the
figures; nothing here trains or evaluates. Edits in hard negatives are colour-coded by negative type.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kgclip.atomic import atomic_write_text

SUBSETS = ("swap_att", "replace_att", "replace_rel", "swap_obj", "replace_obj", "add_obj", "add_att")
ZEROSHOT = ("zeroshot_shape", "zeroshot_colour")
RESULT_KEYS = SUBSETS + ZEROSHOT
EDIT_COLOURS = {"swap_att": "#d62728", "replace_att": "#ff7f0e", "replace_rel": "#2ca02c", "swap_obj": "#9467bd",
                "replace_obj": "#8c564b", "add_obj": "#e377c2", "add_att": "#17becf", "relation_reversal": "#bcbd22"}


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


def edited_words(text: str, caption: str) -> list[bool]:
    """Per word of `text`: True where it differs from `caption` (word-level diff, case-insensitive).

    Diffing against the edited caption marks the right occurrence even when the new word also
    appears elsewhere ("a yellow circle and a **yellow** triangle"), and covers swaps and additions.
    """
    import difflib

    words, src = text.split(), caption.split()
    marks = [False] * len(words)
    sm = difflib.SequenceMatcher(a=[w.lower() for w in src], b=[w.lower() for w in words], autojunk=False)
    for op, _i1, _i2, j1, j2 in sm.get_opcodes():
        if op in ("replace", "insert"):
            marks[j1:j2] = [True] * (j2 - j1)
    return marks


def highlight_edit(text: str, neg: dict[str, Any], fmt: str) -> str:
    """The negative's text with the changed words marked (HTML span or Markdown bold)."""
    colour = EDIT_COLOURS.get(str(neg.get("type")), "#444")
    caption = str(neg.get("caption") or "")
    words = text.split()
    if caption:
        marks = edited_words(text, caption)
    else:  # no source caption recorded: mark the first occurrence of `to`
        to = str(neg.get("to") or "").lower()
        marks = [False] * len(words)
        if to in [w.lower() for w in words]:
            marks[[w.lower() for w in words].index(to)] = True
    out = []
    for word, marked in zip(words, marks):
        if fmt == "html":
            w = html.escape(word)
            out.append(f'<b style="color:{colour}">{w}</b>' if marked else w)
        else:
            out.append(f"**{word}**" if marked else word)
    return " ".join(out)


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


class Report:
    """Sections of headings, paragraphs, tables, images and sample cards, written to .md and .html."""

    def __init__(self, title: str, folder: Path):
        self.title, self.folder, self.blocks = title, Path(folder), []

    def heading(self, text: str) -> None:
        self.blocks.append(("h", text))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, rows: list[list[str]]) -> None:
        self.blocks.append(("t", rows))

    def image(self, path: Path | None, alt: str) -> None:
        if path is not None and Path(path).is_file():
            self.blocks.append(("i", (Path(path), alt)))

    def samples(self, rows: list[dict[str, Any]]) -> None:
        """rows: {image (path), captions, pseudo_captions [{text}], hard_negatives [{type, text, to}]}."""
        self.blocks.append(("s", rows))

    def _rel(self, p: Path) -> str:
        try:
            return str(p.resolve().relative_to(self.folder.resolve()))
        except ValueError:
            return str(p)

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, b in self.blocks:
            if kind == "h":
                out += [f"## {b}", ""]
            elif kind == "p":
                out += [b, ""]
            elif kind == "t":
                out += ["| " + " | ".join(b[0]) + " |", "|" + "---|" * len(b[0])]
                out += ["| " + " | ".join(r) + " |" for r in b[1:]] + [""]
            elif kind == "i":
                out += [f"![{b[1]}]({self._rel(b[0])})", ""]
            elif kind == "s":
                for r in b:
                    out.append(f"![sample]({self._rel(Path(r['image']))}) " + "; ".join(r.get("captions", [])[:1]))
                    out += [f"- pseudo: {p['text']}" for p in r.get("pseudo_captions", [])[:3]]
                    out += [f"- neg `{n.get('type')}`: {highlight_edit(n.get('text', ''), n, 'md')}"
                            for n in r.get("hard_negatives", [])[:4]]
                    out.append("")
        return "\n".join(out) + "\n"

    def html(self) -> str:
        def img_tag(p: Path, alt: str, width: int | None = None) -> str:
            data = base64.b64encode(p.read_bytes()).decode()
            mime = "image/png" if p.suffix == ".png" else "image/jpeg"
            w = f' width="{width}" style="image-rendering:pixelated"' if width else ""
            return f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{data}"{w}>'

        out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>",
               "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
               "td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px}.card{display:inline-block;width:250px;"
               "vertical-align:top;margin:4px;font-size:12px;border:1px solid #ddd;padding:4px}</style></head><body>",
               f"<h1>{html.escape(self.title)}</h1>"]
        for kind, b in self.blocks:
            if kind == "h":
                out.append(f"<h2>{html.escape(b)}</h2>")
            elif kind == "p":
                out.append(f"<p>{html.escape(b)}</p>")
            elif kind == "t":
                out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in b[0]) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in b[1:]]
                out.append("</table>")
            elif kind == "i":
                out.append(f"<p>{img_tag(b[0], b[1])}</p>")
            elif kind == "s":
                out.append("<div>")
                for r in b:
                    parts = [img_tag(Path(r["image"]), "sample", 144)]
                    parts += [f"<div>{html.escape(c)}</div>" for c in r.get("captions", [])[:1]]
                    parts += [f"<div style='color:#555'>pseudo: {html.escape(p['text'])}</div>"
                              for p in r.get("pseudo_captions", [])[:3]]
                    parts += [f"<div>{html.escape(str(n.get('type')))}: {highlight_edit(n.get('text', ''), n, 'html')}</div>"
                              for n in r.get("hard_negatives", [])[:4]]
                    out.append("<div class='card'>" + "".join(parts) + "</div>")
                out.append("</div>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"

    def write(self, stem: str = "report") -> tuple[Path, Path]:
        self.folder.mkdir(parents=True, exist_ok=True)
        md, ht = self.folder / f"{stem}.md", self.folder / f"{stem}.html"
        md.write_text(self.markdown())
        ht.write_text(self.html())
        return md, ht


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
