"""The one-screen summary printed at the end of `kgaug build`."""

from __future__ import annotations

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
