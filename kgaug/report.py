"""The run report: counts per source record and per negative type, and every skip with its reason."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kgclip.atomic import atomic_write_text

MAX_ITEMS = 100_000  # skip entries listed one by one; beyond this only the per-reason counts grow


class Report:
    def __init__(self, source: str, options: dict[str, Any]) -> None:
        self.source = source
        self.options = options
        self.counts: Counter = Counter()
        self.negatives: Counter = Counter()
        self.skip_reasons: Counter = Counter()
        self.skips: list[dict[str, str]] = []
        self.record_problems: Counter = Counter()
        self.problem_items: list[dict[str, str]] = []
        self.negative_rejections: dict[str, Counter] = {}
        self.extra: dict[str, Any] = {}

    def skip(self, where, reason: str) -> None:
        """`where` is a string, or (in a worker reading one range of a file) a `RelativeWhere` that
        `merge` makes absolute."""
        self.skip_reasons[reason] += 1
        if len(self.skips) < MAX_ITEMS:
            self.skips.append({"where": where, "reason": reason})

    def problem(self, key: str, reason: str) -> None:
        """Something dropped inside a record that was kept (e.g. one relation to an unknown id)."""
        self.record_problems[reason] += 1
        if len(self.problem_items) < MAX_ITEMS:
            self.problem_items.append({"key": key, "reason": reason})

    def merge(self, other: Report, where: Callable[[Any], str] = str) -> None:
        """Add the counts, skips and problems of `other` (a later part of the same input) after this
        report's own, as if both had been recorded in one report; `where` turns its skip positions into text."""
        self.counts.update(other.counts)
        self.negatives.update(other.negatives)
        self.skip_reasons.update(other.skip_reasons)
        room = MAX_ITEMS - len(self.skips)
        self.skips.extend({"where": where(s["where"]), "reason": s["reason"]} for s in other.skips[:room])
        self.record_problems.update(other.record_problems)
        self.problem_items.extend(other.problem_items[:MAX_ITEMS - len(self.problem_items)])

    def rejections(self, rejected: Counter) -> None:
        for (kind, reason), n in rejected.items():
            self.negative_rejections.setdefault(kind, Counter())[reason] += n

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "options": self.options,
            "counts": dict(sorted(self.counts.items())),
            "negatives_by_type": dict(sorted(self.negatives.items())),
            "negative_rejections": {k: dict(sorted(v.items())) for k, v in sorted(self.negative_rejections.items())},
            "skips_by_reason": dict(sorted(self.skip_reasons.items())),
            "skips": self.skips,
            "skips_listed": len(self.skips),
            "record_problems_by_reason": dict(sorted(self.record_problems.items())),
            "record_problems": self.problem_items,
            **self.extra,
        }

    def write(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1, sort_keys=False))
