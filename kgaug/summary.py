"""The one-screen summary printed at the end of `kgaug build`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from kgaug.report import Report


def summary_text(report: Report, out: str) -> str:
    c = report.counts
    lines = [
        f"kgaug build --source {report.source} -> {out}",
        f"  images: {c['images']} rows (read {c['records_read']} records, skipped {sum(report.skip_reasons.values())})",
        f"  pseudo-captions: {c['pseudo_captions']}   hard negatives: {c['hard_negatives']}"
        + (f"   captions parsed: {c['captions_parsed']}" if c.get("captions_parsed") else ""),
        "  negatives by type: " + ", ".join(f"{k} {v}" for k, v in sorted(report.negatives.items())),
    ]
    if c.get("rows_without_image"):
        lines.append(f"  rows without an image: {c['rows_without_image']} (no --images, or no file for them): "
                     "fine for the table; clusterbuild shard cannot write them")
    if report.skip_reasons:
        lines.append("  skipped, by reason:")
        for reason, n in report.skip_reasons.most_common(8):
            lines.append(f"    {n:>7}  {reason}")
        if len(report.skip_reasons) > 8:
            rest = report.skip_reasons.most_common()[8:]
            lines.append(f"    {sum(n for _, n in rest):>7}  … in {len(rest)} more reasons (report.json)")
    if report.record_problems:
        lines.append("  dropped inside kept records:")
        for reason, n in report.record_problems.most_common(5):
            lines.append(f"    {n:>7}  {reason}")
    ref = report.extra.get("refinement")
    if ref:
        if "off" in ref:
            lines.append(f"  refinement: off ({ref['off']})")
        else:
            from kgaug.fluency import REFINED

            dropped = {k: v[REFINED] for k, v in sorted(report.negative_rejections.items()) if v.get(REFINED)}
            lines.append(f"  refinement: turned down {sum(dropped.values())} candidates a text-only LM of the captions"
                         " tells from their caption" + (" (" + ", ".join(f"{k} {n}" for k, n in dropped.items()) + ")"
                                            if dropped else ""))
    kg = report.extra.get("kg", {})
    lines.append(f"  KG: {kg.get('nodes', 0)} nodes, {kg.get('edges', 0)} edges (wordnet: {kg.get('wordnet')}, "
                 f"conceptnet edges: {kg.get('conceptnet_edges', 0)})")
    secs = report.extra.get("seconds", {})
    total = sum(secs.values()) or 1e-9
    rate = c["images"] / total
    lines.append(f"  time: {total:.1f} s ({rate:,.{0 if rate >= 10 else 1}f} images/s); report: report.json")
    return "\n".join(lines)


SAMPLE_ROWS = 12  # sample cards on report.html
SAMPLE_FROM = 2_000  # drawn from the table's first rows (a seeded choice; a large table is not read whole)


def report_page(report: Report, out: Path, seed: int = 0) -> Path:
    """OUT/report.html: one self-contained page of what the build made and dropped — counts, negatives
    per type with what refused them, skip reasons, the refinement, and sample cards (photo thumbnail,
    caption, pseudo-captions, negatives with the edited words colour-coded by type)."""
    from kgaug.table import read_rows
    from kgclip.page import Report as Page

    out = Path(out)
    c = report.counts
    page = Page(f"kgaug build --source {report.source}", out)
    page.para(f"{c['images']} rows from {c['records_read']} records read ({sum(report.skip_reasons.values())} "
              f"skipped); {c['pseudo_captions']} pseudo-captions, {c['hard_negatives']} hard negatives. "
              f"Everything below is also in report.json.")
    page.heading("Hard negatives by type")
    rows = [["type", "negatives", "most frequent refusal", "refusals"]]
    for kind, n in sorted(report.negatives.items()):
        why = report.negative_rejections.get(kind) or Counter()
        top = why.most_common(1)
        rows.append([kind, str(n), top[0][0] if top else "–", str(sum(why.values()))])
    page.table(rows)
    ref = report.extra.get("refinement") or {}
    if ref.get("types"):
        page.heading("Adversarial refinement")
        page.para("Per type, on the calibration sample: the share of negatives a text-only LM of the captions "
                  "finds less likely than their caption, and the probability a negative on the side it leans "
                  "to is kept.")
        page.table([["type", "calibration negatives", "less likely", "leans", "keep"]]
                   + [[k, str(v["sample_negatives"]), f"{100 * v['less_likely_share']:.0f} %", v["leans"],
                       f"{v['keep']:.2f}"] for k, v in ref["types"].items()])
    elif ref.get("off"):
        page.para(f"Adversarial refinement off: {ref['off']}.")
    if report.skip_reasons:
        page.heading("Skipped records")
        page.table([["reason", "records"]] + [[r, str(n)] for r, n in report.skip_reasons.most_common(15)])
    picked: list[dict] = []
    if c["images"]:
        import itertools
        import random

        first = list(itertools.islice(read_rows(out), SAMPLE_FROM))
        picked = random.Random(seed).sample(first, min(SAMPLE_ROWS, len(first)))
    if picked:
        page.heading(f"{len(picked)} rows drawn at random")
        page.samples([{"image": r.get("image"), "captions": r.get("captions") or [],
                       "pseudo_captions": r.get("pseudo_captions") or [],
                       "hard_negatives": r.get("hard_negatives") or []} for r in picked])
    return page.write("report", markdown=False)[1]
