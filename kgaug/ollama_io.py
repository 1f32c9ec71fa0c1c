"""Requests to a local Ollama server through the official `ollama` client: a check that the server
answers and has the model (before any long work), JSON-structured chat with a disk cache, retries
with back-off, and errors turned into reasons.

The cache is keyed by (model, messages, format, options): a rerun sends no request for work already
done, and gives the same table even though an Ollama seed is not bit-exact across machines.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgclip.atomic import atomic_write_text

DEFAULT_HOST = "http://127.0.0.1:11434"


class OllamaUnavailable(RuntimeError):
    """No server answers, or it lacks the model: the build stops before (or instead of) writing a table."""


class RequestFailed(RuntimeError):
    """One request failed after its retries (its reason is counted; the build goes on)."""


def start_hint(host: str, model: str) -> str:
    return (f"start Ollama with `ollama serve` (or its desktop app), then `ollama pull {model}`; "
            f"or point --ollama-host / OLLAMA_HOST at a running server (tried {host})")


def resolve_host(host: str | None) -> str:
    return host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST


@dataclass
class OllamaSettings:
    host: str
    model: str
    timeout: float = 120.0  # seconds per request
    retries: int = 3  # more tries after the first, on 429/5xx, connection errors and timeouts
    backoff: float = 1.0  # seconds before the first retry, doubled each time


class Cache:
    """One JSON file per request key under `folder` (written atomically)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @staticmethod
    def key(request: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            return json.loads(self._path(key).read_text())["content"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, content: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"content": content}, ensure_ascii=False), fsync=False)


class Ollama:
    """`chat(messages, schema, options)` -> the message content, through the cache."""

    def __init__(self, settings: OllamaSettings, cache: Cache) -> None:
        import ollama

        self.settings, self.cache = settings, cache
        self.client = ollama.Client(host=settings.host, timeout=settings.timeout)
        self.requests = 0
        self.cache_hits = 0
        self._lock = threading.Lock()  # the counters, from the request threads

    def check(self) -> None:
        """Raise OllamaUnavailable unless the server answers `GET /api/tags` and lists the model."""
        import httpx
        import ollama

        s = self.settings
        try:
            listed = self.client.list()
        except (ConnectionError, httpx.HTTPError, ollama.ResponseError) as e:
            raise OllamaUnavailable(f"no Ollama server answers at {s.host} ({_why(e)}): {start_hint(s.host, s.model)}") from None
        names = {m.model for m in listed.models if m.model}
        wanted = {s.model} if ":" in s.model else {s.model, f"{s.model}:latest"}
        if names.isdisjoint(wanted):
            raise OllamaUnavailable(f"the Ollama server at {s.host} does not have model {s.model!r} "
                                    f"(it has: {', '.join(sorted(names)) or 'none'}): run `ollama pull {s.model}`")

    def chat(self, messages: list[dict[str, str]], schema: dict, options: dict[str, Any]) -> str:
        request = {"model": self.settings.model, "messages": messages, "format": schema, "options": options}
        key = Cache.key(request)
        hit = self.cache.get(key)
        if hit is not None:
            with self._lock:
                self.cache_hits += 1
            return hit
        content = self._send(request)
        self.cache.put(key, content)
        return content

    def _send(self, request: dict[str, Any]) -> str:
        import httpx
        import ollama

        s = self.settings
        for attempt in range(s.retries + 1):
            last = attempt == s.retries
            try:
                with self._lock:
                    self.requests += 1
                return self.client.chat(**request).message.content or ""
            except ollama.ResponseError as e:
                if e.status_code == 404:
                    raise OllamaUnavailable(f"Ollama at {s.host}: {e.error}: run `ollama pull {s.model}`") from None
                if not (e.status_code == 429 or e.status_code >= 500) or last:
                    raise RequestFailed(f"server error {e.status_code}") from None
            except httpx.TimeoutException:
                if last:
                    raise RequestFailed("timeout") from None
            except (ConnectionError, httpx.TransportError) as e:
                if last:
                    raise OllamaUnavailable(f"lost the Ollama server at {s.host} ({_why(e)}): "
                                            f"{start_hint(s.host, s.model)}") from None
            if s.backoff > 0:
                time.sleep(s.backoff * 2 ** attempt)
        raise AssertionError("unreachable")


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
