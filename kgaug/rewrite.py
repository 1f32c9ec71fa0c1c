"""`kgaug build --rewrite ollama`: LLM rewrites of the rule-made pseudo-captions (LaCLIP-style, by
in-context prompting) and, with `--llm-negatives`, fluent rephrasings of the rule-made hard negatives,
each kept only when `kgaug.grounding` finds it states what the image's scene graph says (a negative:
what the rule text says, its false fact included) and nothing else.

It runs after pass 2, on the finished parts of `table.tmp/`, and writes new parts in
`table.TABLE_SCHEMA_LLM` (origin and model per text); the build renames them into place only when all
are written. Requests go out from a bounded thread pool; the answers are read, checked and placed here
in row order, so the table does not depend on the number of workers nor on the order of the answers.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from kgaug import grounding, lexicon
from kgaug.negatives import derive_fact
from kgaug.ollama_io import Cache, Ollama, OllamaSettings, OllamaUnavailable, RequestFailed, resolve_host
from kgaug.scene_graph import SceneGraph

BACKENDS = ("ollama",)
CACHE_DIR = "rewrite_cache"  # default cache folder, inside the output folder
MALFORMED = "malformed JSON"
EMPTY = "empty"
DUPLICATE = "duplicate"


@dataclass
class RewriteConfig:
    backend: str = "ollama"
    model: str = "llama3.2"
    host: str | None = None  # default: OLLAMA_HOST, else Ollama's http://127.0.0.1:11434
    per_image: int = 2  # rewrites asked per image (each of one rule pseudo-caption, in turn)
    workers: int = 4  # requests in flight
    cache: Path | None = None  # default: OUT/rewrite_cache
    negatives: bool = False  # also rephrase every hard negative
    timeout: float = 120.0
    retries: int = 3
    backoff: float = 1.0
    temperature: float = 0.9  # LaCLIP's


@cache
def prompts() -> dict[str, Any]:
    return lexicon.load("rewrite_prompts")


def _facts_text(facts: list[str]) -> str:
    return "; ".join(facts)


def rewrite_messages(style: str, facts: list[str], caption: str) -> list[dict[str, str]]:
    """System prompt, the in-context examples (as earlier turns), then this caption."""
    p = prompts()["rewrite"]

    def user(style: str, facts: list[str], caption: str) -> str:
        return p["user"].format(style=style, style_hint=p["styles"].get(style, ""), facts=_facts_text(facts),
                                caption=caption)

    out = [{"role": "system", "content": p["system"]}]
    for e in p["examples"]:
        out += [{"role": "user", "content": user(e["style"], e["facts"], e["caption"])},
                {"role": "assistant", "content": json.dumps({p["field"]: e["rewrite"]})}]
    return [*out, {"role": "user", "content": user(style, facts, caption)}]


def negative_messages(text: str) -> list[dict[str, str]]:
    p = prompts()["negative"]
    out = [{"role": "system", "content": p["system"]}]
    for e in p["examples"]:
        out += [{"role": "user", "content": p["user"].format(text=e["text"])},
                {"role": "assistant", "content": json.dumps({p["field"]: e["rewrite"]})}]
    return [*out, {"role": "user", "content": p["user"].format(text=text)}]


def parse_reply(content: str, key: str) -> str | None:
    """The text under `key` of a JSON reply (None: not JSON, or no such non-empty string)."""
    try:
        value = json.loads(content).get(key)
    except (ValueError, AttributeError):
        return None
    return " ".join(value.split()) if isinstance(value, str) else None


def request_seed(seed: int, key: str, k: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}:{k}".encode()).digest()[:4], "big") & 0x7FFFFFFF


@dataclass
class Job:
    row: int
    kind: str  # "rewrite" | "negative"
    index: int  # rewrite number, or the negative's index in the row
    messages: list[dict[str, str]]
    options: dict[str, Any]
    payload: dict[str, Any] = field(default_factory=dict)


def jobs_for(rows: list[dict], rc: RewriteConfig, seed: int) -> list[Job]:
    out = []
    for i, row in enumerate(rows):
        pseudo = row["pseudo_captions"] or []
        for k in range(rc.per_image if pseudo else 0):
            p = pseudo[k % len(pseudo)]
            opts = {"seed": request_seed(seed, row["key"], k), "temperature": rc.temperature}
            out.append(Job(i, "rewrite", k, rewrite_messages(p["style"], list(p["facts"]), p["text"]), opts,
                           {"facts": list(p["facts"]), "style": p["style"]}))
        if rc.negatives:
            for j, n in enumerate(row["hard_negatives"] or []):
                opts = {"seed": request_seed(seed, row["key"], 1000 + j), "temperature": 0.0}
                out.append(Job(i, "negative", j, negative_messages(n["text"]), opts))
    return out


class Rewriter:
    """The server check (at construction: before the long work) and the per-table rewriting."""

    def __init__(self, rc: RewriteConfig, out: Path) -> None:
        if rc.backend not in BACKENDS:
            raise OllamaUnavailable(f"unknown --rewrite {rc.backend!r} (one of {', '.join(BACKENDS)})")
        self.rc = rc
        self.settings = OllamaSettings(resolve_host(rc.host), rc.model, rc.timeout, rc.retries, rc.backoff)
        self.client = Ollama(self.settings, Cache(rc.cache if rc.cache is not None else Path(out) / CACHE_DIR))
        self.client.check()
        self.stats: dict[str, dict] = {kind: {"requested": 0, "accepted": 0, "rejected": {}}
                                       for kind in ("rewrites", "llm_negatives")}

    def _reject(self, kind: str, reason: str) -> None:
        r = self.stats[kind]["rejected"]
        r[reason] = r.get(reason, 0) + 1

    def run(self, rows: list[dict], seed: int, vocab: grounding.Vocab, synonyms, bar) -> list[dict]:
        """`rows` (table rows as dicts) with accepted rewrites added and accepted fluent negatives in place."""
        jobs = jobs_for(rows, self.rc, seed)
        answers: dict[int, str | RequestFailed] = {}
        pool = ThreadPoolExecutor(max(1, self.rc.workers), thread_name_prefix="kgaug-ollama")
        try:
            futures: dict[Future, int] = {
                pool.submit(self.client.chat, j.messages, prompts()["rewrite" if j.kind == "rewrite" else "negative"]
                            ["schema"], j.options): n for n, j in enumerate(jobs)}
            for fut in as_completed(futures):
                try:
                    answers[futures[fut]] = fut.result()
                except RequestFailed as e:
                    answers[futures[fut]] = e
                bar.advance()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        by_row: dict[int, list[tuple[Job, str | RequestFailed]]] = {}
        for n, j in enumerate(jobs):
            by_row.setdefault(j.row, []).append((j, answers[n]))
        return [self._row(row, by_row.get(i, []), vocab, synonyms) for i, row in enumerate(rows)]

    def _row(self, row: dict, done: list[tuple[Job, str | RequestFailed]], vocab, synonyms) -> dict:
        model = self.settings.model
        graph = SceneGraph.from_json(row["scene_graph"])
        facts, names = grounding.graph_facts(graph)
        pseudo = [{**p, "origin": "rules", "model": None} for p in row["pseudo_captions"] or []]
        negs = [{**n, "origin": "rules", "model": None} for n in row["hard_negatives"] or []]
        seen = {lexicon.clean(t) for t in [*(row["captions"] or []), *(p["text"] for p in pseudo)]}
        for job, answer in done:
            kind = "rewrites" if job.kind == "rewrite" else "llm_negatives"
            self.stats[kind]["requested"] += 1
            if isinstance(answer, RequestFailed):
                self._reject(kind, f"request failed: {answer}")
                continue
            text = parse_reply(answer, prompts()[job.kind]["field"])
            reason = MALFORMED if text is None else EMPTY if not text.strip() else None
            if reason is None and job.kind == "rewrite":
                assert text is not None
                reason = DUPLICATE if lexicon.clean(text) in seen else grounding.check_rewrite(
                    text, facts, [f for f in job.payload["facts"] if "(" not in f], vocab, names, synonyms)
                if reason is None:
                    seen.add(lexicon.clean(text))
                    pseudo.append({"text": text, "facts": job.payload["facts"], "style": job.payload["style"],
                                   "origin": "llm", "model": model})
            elif reason is None:
                assert text is not None
                n = negs[job.index]
                false_fact = derive_fact(n["type"], n["fact"], n["from"], n["to"])
                reason = grounding.check_negative(text, n["text"], false_fact, facts, vocab, names)
                if reason is None:
                    negs[job.index] = {**n, "text": text, "origin": "llm", "model": model}
            if reason is None:
                self.stats[kind]["accepted"] += 1
            else:
                self._reject(kind, reason)
        return {**row, "pseudo_captions": pseudo, "hard_negatives": negs}

    def summary(self) -> dict[str, Any]:
        """What report.json says under "rewrites" (and "llm_negatives" when asked for)."""
        out: dict[str, Any] = {}
        for kind, s in self.stats.items():
            if kind == "llm_negatives" and not self.rc.negatives:
                continue
            out[kind] = {"backend": self.rc.backend, "model": self.settings.model, "host": self.settings.host,
                         "requested": s["requested"], "accepted": s["accepted"],
                         "rejected": sum(s["rejected"].values()),
                         "rejected_by_reason": dict(sorted(s["rejected"].items()))}
        out["rewrites"]["requests_sent"] = self.client.requests
        out["rewrites"]["cache_hits"] = self.client.cache_hits
        return out


def rewrite_parts(src: Path, dst: Path, rewriter: Rewriter, kg, seed: int, progress: bool, console=None) -> None:
    """Every part of `src` (pass 2's table.tmp/) rewritten into `dst`, same names, TABLE_SCHEMA_LLM."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from kgaug.table import TABLE_SCHEMA_LLM
    from kgclip.progress import progress_bar

    dst.mkdir(parents=True, exist_ok=True)
    parts = sorted(Path(src).glob("*.parquet"))
    total = 0
    for part in parts:
        t = pq.read_table(part, columns=["pseudo_captions", "hard_negatives"])
        has_pseudo = pc.sum(pc.greater(pc.list_value_length(t["pseudo_captions"]), 0)).as_py() or 0
        total += has_pseudo * rewriter.rc.per_image
        if rewriter.rc.negatives:
            total += pc.sum(pc.list_value_length(t["hard_negatives"])).as_py() or 0
    vocab = grounding.Vocab.build(kg.obj, kg.att, kg.pred)
    wn = kg.wn
    synonyms = wn.synonyms if wn.enabled and wn.wn is not None else None
    with progress_bar(f"rewrite ({rewriter.settings.model})", total, progress, console) as bar:
        for part in parts:
            rows = pq.read_table(part).to_pylist()
            table = pa.Table.from_pylist(rewriter.run(rows, seed, vocab, synonyms, bar), schema=TABLE_SCHEMA_LLM)
            pq.write_table(table, dst / part.name, row_group_size=1024)
