"""A report page: one content model (headings, paragraphs, tables, figures, sample cards) rendered as
Markdown and as one self-contained HTML file (figures and thumbnails inline), for `kgaug build`'s
report.html, `train run`'s and the demo's. Edits in hard negatives are colour-coded by negative type.
Pure rendering: callers hand in plain data."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from kgclip.atomic import atomic_write_text
from kgclip.vocab import NEGATIVE_TYPES

EDIT_COLOURS = dict(zip(NEGATIVE_TYPES, ("#8c564b", "#ff7f0e", "#2ca02c", "#9467bd", "#d62728", "#e377c2",
                                         "#17becf", "#bcbd22")))
THUMB_SIDE = 160  # sample photos are embedded as JPEG thumbnails of this size, not as the originals


def edited_words(text: str, caption: str) -> list[bool]:
    """Per word of `text`: True where it differs from `caption` (word-level diff, case-insensitive).

    Diffing against the edited caption marks the right occurrence even when the new word also
    appears elsewhere ("a yellow circle and a **yellow** triangle"), and covers swaps and additions.
    """
    import difflib

    words, src = text.split(), caption.split()
    marks = [False] * len(words)
    def norm(w: str) -> str:  # 'laptop.' and 'laptop' are one word ('a laptop.' -> 'a laptop and a cup.')
        return w.lower().strip(".,;:!?")

    sm = difflib.SequenceMatcher(a=[norm(w) for w in src], b=[norm(w) for w in words], autojunk=False)
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
                    img = f"![sample]({self._rel(Path(r['image']))}) " if r.get("image") else ""
                    out.append(img + "; ".join(r.get("captions", [])[:1]))
                    out += [f"- pseudo: {p['text']}" for p in r.get("pseudo_captions", [])[:3]]
                    out += [f"- neg `{n.get('type')}`: {highlight_edit(n.get('text', ''), n, 'md')}"
                            for n in r.get("hard_negatives", [])[:4]]
                    out.append("")
        return "\n".join(out) + "\n"

    def html(self) -> str:
        def img_tag(p: Path, alt: str, width: int | None = None) -> str:
            if width:  # a sample photo: a small JPEG, whatever the original's size
                data, mime = thumbnail(p), "image/jpeg"
            else:
                data, mime = p.read_bytes(), "image/png" if p.suffix == ".png" else "image/jpeg"
            w = f' width="{width}" style="image-rendering:pixelated"' if width else ""
            b64 = base64.b64encode(data).decode()
            return f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{b64}"{w}>'

        out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>",
               "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
               "td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px}.card{display:inline-block;width:250px;"
               "vertical-align:top;margin:4px;font-size:12px;border:1px solid #ddd;padding:4px}.noimg{color:#999;"
               "height:40px}</style></head><body>",
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
                    img = r.get("image")
                    parts = [img_tag(Path(img), "sample", 144) if img and Path(img).is_file()
                             else "<div class='noimg'>(no image)</div>"]
                    parts += [f"<div>{html.escape(c)}</div>" for c in r.get("captions", [])[:1]]
                    parts += [f"<div style='color:#555'>pseudo: {html.escape(p['text'])}</div>"
                              for p in r.get("pseudo_captions", [])[:3]]
                    parts += [f"<div>{html.escape(str(n.get('type')))}: {highlight_edit(n.get('text', ''), n, 'html')}</div>"
                              for n in r.get("hard_negatives", [])[:4]]
                    out.append("<div class='card'>" + "".join(parts) + "</div>")
                out.append("</div>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"

    def write(self, stem: str = "report", markdown: bool = True) -> tuple[Path | None, Path]:
        self.folder.mkdir(parents=True, exist_ok=True)
        md, ht = self.folder / f"{stem}.md", self.folder / f"{stem}.html"
        if markdown:
            atomic_write_text(md, self.markdown())
        atomic_write_text(ht, self.html())
        return (md if markdown else None), ht


def thumbnail(path: Path, side: int = THUMB_SIDE, quality: int = 80) -> bytes:
    """A JPEG of `path` at most `side` pixels on its longer side."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((side, side))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


