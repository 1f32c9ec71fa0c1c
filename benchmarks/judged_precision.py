"""Judged precision of hard negatives from independent readers' labels (docs/QUALITY.md, issue 19 goal 1).

    .venv/bin/python benchmarks/judged_precision.py docs/quality/coco-before [docs/quality/vg-before ...]

For a sample NAME (drawn by benchmarks/sample_negatives.py) it reads every judge's labels
`NAME.labels.<judge>.jsonl` (one line per id: label good|borderline|bad, false_for_image
yes|no|unclear, reason) and the type key `NAME.key.jsonl`, and prints, per judge and for the judges
together: the share good / borderline / bad, the share a judge called true for the image
(false_for_image == "no"), Cohen's kappa between each pair of judges on the three labels, and the
share good per negative type (the mean over judges). `--json OUT` writes the same numbers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import Counter
from pathlib import Path

LABELS = ("good", "borderline", "bad")


def read_jsonl(path: Path) -> list[dict]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise SystemExit(f"{path}:{n}: not JSON ({e})") from e
    return out


def load(sample: Path) -> tuple[dict[str, dict[str, dict]], dict[str, str]]:
    """({judge: {id: label record}}, {id: type}); every judge must label every id of the key once."""
    key = {r["id"]: r["type"] for r in read_jsonl(sample.with_name(sample.name + ".key.jsonl"))}
    judges: dict[str, dict[str, dict]] = {}
    for path in sorted(sample.parent.glob(sample.name + ".labels.*.jsonl")):
        judge = path.name[len(sample.name + ".labels."):-len(".jsonl")]
        recs = read_jsonl(path)
        ids = [r.get("id") for r in recs]
        dup = [i for i, c in Counter(ids).items() if c > 1]
        missing = sorted(set(key) - set(ids))
        bad = [r.get("id") for r in recs if r.get("label") not in LABELS]
        if dup or missing or bad:
            raise SystemExit(f"{path}: duplicate ids {dup[:3]}, missing ids {missing[:3]}, bad labels {bad[:3]}")
        judges[judge] = {r["id"]: r for r in recs if r["id"] in key}
    if not judges:
        raise SystemExit(f"no {sample.name}.labels.<judge>.jsonl next to {sample}")
    return judges, key


def shares(labels: list[str]) -> dict[str, float]:
    n = max(len(labels), 1)
    return {lab: labels.count(lab) / n for lab in LABELS}


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """Agreement beyond chance on categorical labels (1 = always agree, 0 = chance)."""
    n = len(a)
    po = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in set(a) | set(b)) / (n * n)
    return (po - pe) / (1 - pe) if pe < 1 else 1.0


def summarise(judges: dict[str, dict[str, dict]], key: dict[str, str]) -> dict:
    ids = sorted(key)
    per_judge = {}
    for j, recs in judges.items():
        labs = [recs[i]["label"] for i in ids]
        per_judge[j] = {**shares(labs), "true_for_image": sum(recs[i].get("false_for_image") == "no" for i in ids)
                        / len(ids)}
    all_labs = [judges[j][i]["label"] for j in judges for i in ids]
    pooled = {**shares(all_labs), "true_for_image": sum(v["true_for_image"] for v in per_judge.values())
              / len(per_judge)}
    both_good = sum(all(judges[j][i]["label"] == "good" for j in judges) for i in ids) / len(ids)
    kappa = {f"{a}-{b}": cohen_kappa([judges[a][i]["label"] for i in ids], [judges[b][i]["label"] for i in ids])
             for a, b in itertools.combinations(sorted(judges), 2)}
    by_type: dict[str, dict] = {}
    for t in sorted(set(key.values())):
        tids = [i for i in ids if key[i] == t]
        by_type[t] = {"n": len(tids), "good": sum(judges[j][i]["label"] == "good" for j in judges for i in tids)
                      / (len(tids) * len(judges))}
    return {"items": len(ids), "judges": sorted(judges), "per_judge": per_judge, "pooled": pooled,
            "good_by_all_judges": both_good, "kappa": kappa, "by_type": by_type}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("samples", nargs="+", type=Path, help="sample path without .jsonl (docs/quality/coco-before)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    out = {}
    print("| sample | judge | good | borderline | bad | true for the image |")
    print("|---|---|---:|---:|---:|---:|")
    for s in a.samples:
        s = s.with_suffix("") if s.suffix == ".jsonl" else s
        res = summarise(*load(s))
        out[s.name] = res
        for j, v in [*res["per_judge"].items(), ("pooled", res["pooled"])]:
            print(f"| {s.name} | {j} | {v['good']:.0%} | {v['borderline']:.0%} | {v['bad']:.0%} "
                  f"| {v['true_for_image']:.0%} |")
    for name, res in out.items():
        print(f"\n{name}: good for every judge {res['good_by_all_judges']:.0%}; Cohen's kappa "
              + ", ".join(f"{k} {v:.2f}" for k, v in res["kappa"].items()) + "; good by type: "
              + ", ".join(f"{t} {v['good']:.0%} (n={v['n']})" for t, v in res["by_type"].items()))
    if a.json:
        a.json.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
