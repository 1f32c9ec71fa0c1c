"""`kgaug build --rewrite ollama`: the grounding checks (pure), and the whole path through the real
`ollama` client against a loopback HTTP server speaking Ollama's REST protocol (pytest-httpserver)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

pytest.importorskip("pytest_httpserver")
from werkzeug import Request, Response  # noqa: E402  (installed with pytest-httpserver)

from kgaug import grounding  # noqa: E402
from kgaug.ollama_io import Cache, Ollama, OllamaSettings, OllamaUnavailable, RequestFailed  # noqa: E402
from kgaug.rewrite import MALFORMED, RewriteConfig, Rewriter, prompts  # noqa: E402
from kgaug.table import read_report, read_rows  # noqa: E402
from tests.kgaug.helpers import run_build, tiny_world, write_vg  # noqa: E402

MODEL = "tiny"
FACTS = ["dog", "black(dog)", "couch", "white(couch)", "on(dog,couch)", "cat", "brown(cat)", "near(cat,couch)"]
VOCAB = grounding.Vocab.build(["dog", "couch", "cat", "tree", "man", "table"], ["black", "white", "brown", "red"],
                      ["on", "under", "near", "riding"])


# -- the checks, pure ------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["A black dog on a white couch.", "There is a black dog on a white couch.",
                                  "A black dog on a white couch and a brown cat near the couch."])
def test_grounded_rewrite_accepted(text):
    assert grounding.check_rewrite(text, FACTS, ["dog", "couch"], VOCAB) is None


@pytest.mark.parametrize("text, reason", [
    ("There is a black dog.", grounding.DROPS_OBJECT),  # the couch is gone
    ("A black dog on a white couch under a tree.", grounding.INVENTS_OBJECT),
    ("A black dog on a red couch.", grounding.INVENTS_ATTRIBUTE),  # a colour the graph does not have
    ("A white dog on a black couch.", grounding.WRONG_ATTRIBUTE),  # colours swapped
    ("A black dog under a white couch.", grounding.INVENTS_RELATION),
    ("A white couch on a black dog.", grounding.WRONG_RELATION),  # the relation reversed
    ("A black dog on a white couch, no cat.", grounding.NEGATION),
])
def test_ungrounded_rewrite_rejected(text, reason):
    assert grounding.check_rewrite(text, FACTS, ["dog", "couch"], VOCAB) == reason


def test_in_context_examples_pass_their_own_check():
    for e in prompts()["rewrite"]["examples"]:
        assert grounding.check_rewrite(e["rewrite"], e["facts"], [f for f in e["facts"] if "(" not in f], VOCAB) is None


def test_fluent_negative_checks():
    rule = "A white dog on a black couch."  # swap_att: white(dog) is false
    assert grounding.check_negative("There is a white dog on a black couch.", rule, "white(dog)", FACTS, VOCAB) is None
    assert grounding.check_negative("A black dog on a white couch.", rule, "white(dog)", FACTS, VOCAB) == grounding.LOSES_FALSE_FACT
    assert grounding.check_negative("A white dog on a couch.", rule, "white(dog)", FACTS, VOCAB) == grounding.LOSES_FACT
    assert grounding.check_negative("A white dog on a black couch under a tree.", rule, "white(dog)", FACTS,
                            VOCAB) == grounding.INVENTS_OBJECT
    reverse = "A white couch on a black dog."
    assert grounding.check_negative("A dog on a couch.", reverse, "on(couch,dog)", FACTS, VOCAB) == grounding.LOSES_FALSE_FACT


# -- a scripted Ollama on loopback -----------------------------------------------------------------

def _last_line(messages: list[dict], prefix: str) -> str:
    return next(line[len(prefix):] for line in messages[-1]["content"].splitlines() if line.startswith(prefix))


def scripted(request: Request) -> Response:
    """Rewrites: "There is " + the caption (grounded), except for captions with a dog, which get a hat
    (invented: no image with a dog has one); negatives: "There is " + the sentence, except sentences with a couch, whose false
    colour is dropped. Replies in Ollama's /api/chat JSON."""
    body = json.loads(request.data)
    msgs = body["messages"]
    assert body["model"] == MODEL and body["stream"] is False and body["format"]["type"] == "object"
    assert "seed" in body["options"] and "temperature" in body["options"]
    if msgs[0]["content"].startswith("You rewrite"):
        cap = _last_line(msgs, "Caption: ").rstrip(".")
        text = f"There is {cap} and a hat." if "dog" in cap else f"There is {cap}."
        content = json.dumps({"caption": text})
    else:
        sent = _last_line(msgs, "Sentence: ").rstrip(".")
        if "couch" in sent:
            sent = sent.replace("black ", "").replace("white ", "").replace("brown ", "")
        content = json.dumps({"sentence": f"There is {sent}."})
    return Response(json.dumps({"model": MODEL, "created_at": "2024-01-01T00:00:00Z", "done": True,
                                "message": {"role": "assistant", "content": content}}),
                    content_type="application/json")


def _tags(httpserver, models=(f"{MODEL}:latest",)) -> None:
    httpserver.expect_request("/api/tags", method="GET").respond_with_json(
        {"models": [{"name": m, "model": m, "size": 1, "digest": "x"} for m in models]})


def _client(httpserver, tmp_path: Path, **kw) -> Ollama:
    settings = OllamaSettings(httpserver.url_for("/").rstrip("/"), MODEL, kw.pop("timeout", 5.0),
                              kw.pop("retries", 2), 0.0)
    return Ollama(settings, Cache(tmp_path / "cache"))


def _chat_reply(content: str) -> dict:
    return {"model": MODEL, "created_at": "2024-01-01T00:00:00Z", "done": True,
            "message": {"role": "assistant", "content": content}}


def _chats(httpserver) -> int:
    return sum(req.path == "/api/chat" for req, _ in httpserver.log)


def test_500_then_success_is_retried(httpserver, tmp_path):
    httpserver.expect_ordered_request("/api/chat", method="POST").respond_with_json({"error": "busy"}, status=500)
    httpserver.expect_ordered_request("/api/chat", method="POST").respond_with_json(_chat_reply('{"caption": "x"}'))
    assert _client(httpserver, tmp_path).chat([{"role": "user", "content": "hi"}], {"type": "object"}, {}) \
        == '{"caption": "x"}'
    assert _chats(httpserver) == 2


def test_400_is_not_retried_and_fails_the_item(httpserver, tmp_path):
    httpserver.expect_request("/api/chat", method="POST").respond_with_json({"error": "bad"}, status=400)
    with pytest.raises(RequestFailed, match="400"):
        _client(httpserver, tmp_path).chat([{"role": "user", "content": "hi"}], {"type": "object"}, {})
    assert _chats(httpserver) == 1


def test_timeout_is_retried_then_fails_the_item(httpserver, tmp_path):
    calls = []

    def slow(request: Request) -> Response:
        calls.append(time.monotonic())
        time.sleep(0.3)
        return Response(json.dumps(_chat_reply("{}")), content_type="application/json")

    httpserver.expect_request("/api/chat", method="POST").respond_with_handler(slow)
    with pytest.raises(RequestFailed, match="timeout"):
        _client(httpserver, tmp_path, timeout=0.1, retries=1).chat([{"role": "user", "content": "hi"}], {}, {})
    deadline = time.monotonic() + 2
    while len(calls) < 2 and time.monotonic() < deadline:  # the server answers one request at a time
        time.sleep(0.05)
    assert len(calls) == 2  # the first try and one retry
    time.sleep(0.35)  # let the server finish the last slow answer before it stops


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_is_one_clear_error_and_no_table(tiny_vg, tmp_path):
    out = tmp_path / "out"
    code, text = run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(out), "--no-wordnet",
                           "--rewrite", "ollama", "--ollama-model", MODEL,
                           "--ollama-host", f"http://127.0.0.1:{_closed_port()}", "--ollama-timeout", "2")
    assert code == 2
    assert "no Ollama server answers" in text and "ollama serve" in text and f"ollama pull {MODEL}" in text
    assert not (out / "table").exists() and not (out / "report.json").exists() and not (out / "kg.json").exists()


def test_missing_model_says_how_to_pull_it(httpserver, tmp_path):
    _tags(httpserver, models=("other:latest",))
    with pytest.raises(OllamaUnavailable, match=f"ollama pull {MODEL}"):
        _client(httpserver, tmp_path).check()


def _row(text: str) -> dict:
    return {"key": "vg_1", "image": None, "source": "vg", "captions": [],
            "pseudo_captions": [{"text": text, "facts": FACTS[:5], "style": "dense"}], "hard_negatives": [],
            "scene_graph": json.dumps({"objects": [{"id": "1", "name": "dog", "attributes": ["black"]},
                                                   {"id": "2", "name": "couch", "attributes": ["white"]}],
                                       "relations": [["1", "on", "2"]]}),
            "sensitive": [], "license": None}


class _Bar:
    def advance(self, n: int = 1) -> None:
        pass


def _rewriter(httpserver, tmp_path, **kw) -> Rewriter:
    rc = RewriteConfig(model=MODEL, host=httpserver.url_for("/").rstrip("/"), per_image=1, workers=2,
                       cache=tmp_path / "cache", backoff=0.0, retries=0, timeout=5.0, **kw)
    return Rewriter(rc, tmp_path)


def test_malformed_json_is_rejected_by_reason(httpserver, tmp_path):
    _tags(httpserver)
    httpserver.expect_request("/api/chat", method="POST").respond_with_json(_chat_reply("A black dog on a couch"))
    rw = _rewriter(httpserver, tmp_path)
    [row] = rw.run([_row("a black dog on a white couch.")], 0, VOCAB, None, _Bar())
    assert [p["origin"] for p in row["pseudo_captions"]] == ["rules"]
    assert rw.summary()["rewrites"]["rejected_by_reason"] == {MALFORMED: 1}


def test_grounded_rewrite_through_the_client_is_kept(httpserver, tmp_path):
    _tags(httpserver)
    httpserver.expect_request("/api/chat", method="POST").respond_with_json(
        _chat_reply('{"caption": "A black dog on top of a white couch."}'))
    rw = _rewriter(httpserver, tmp_path)
    [row] = rw.run([_row("a black dog on a white couch.")], 0, VOCAB, None, _Bar())
    llm = [p for p in row["pseudo_captions"] if p["origin"] == "llm"]
    assert [(p["text"], p["model"]) for p in llm] == [("A black dog on top of a white couch.", MODEL)]


# -- end to end: kgaug build --source vg --rewrite ollama ------------------------------------------

def _build(vg: Path, out: Path, url: str, cache: Path, *more: str) -> tuple[int, str]:
    return run_build("--source", "vg", "--vg-dir", str(vg), "--out", str(out), "--no-wordnet",
                     "--rewrite", "ollama", "--ollama-model", MODEL, "--ollama-host", url,
                     "--rewrites-per-image", "2", "--rewrite-workers", "3", "--rewrite-cache", str(cache),
                     "--ollama-backoff", "0", "--ollama-timeout", "5", *more)


def test_build_end_to_end_and_warm_cache(httpserver, tmp_path):
    vg = write_vg(tmp_path / "vg", tiny_world())
    _tags(httpserver)
    httpserver.expect_request("/api/chat", method="POST").respond_with_handler(scripted)
    url, cache = httpserver.url_for("/").rstrip("/"), tmp_path / "cache"
    code, text = _build(vg, tmp_path / "a", url, cache, "--llm-negatives")
    assert code == 0, text
    rows = list(read_rows(tmp_path / "a"))
    report = read_report(tmp_path / "a")
    llm = [p for r in rows for p in r["pseudo_captions"] if p["origin"] == "llm"]
    rules = [p for r in rows for p in r["pseudo_captions"] if p["origin"] == "rules"]
    assert llm and rules and all(p["model"] == MODEL and p["text"].startswith("There is ") for p in llm)
    assert not any("hat" in p["text"] for r in rows if "dog" in r["scene_graph"] for p in llm)  # invented hats
    rw = report["rewrites"]
    assert rw["requested"] == 2 * len(rows) and rw["accepted"] == len(llm) == report["counts"]["llm_pseudo_captions"]
    assert rw["rejected_by_reason"].get(grounding.INVENTS_OBJECT, 0) > 0 and rw["accepted"] + rw["rejected"] == rw["requested"]
    negs = [n for r in rows for n in r["hard_negatives"]]
    fluent = [n for n in negs if n["origin"] == "llm"]
    assert fluent and all(n["text"].startswith("There is ") for n in fluent)
    ln = report["llm_negatives"]
    assert ln["requested"] == len(negs) and ln["accepted"] == len(fluent)
    lost = ln["rejected_by_reason"].get(grounding.LOSES_FACT, 0) + ln["rejected_by_reason"].get(grounding.LOSES_FALSE_FACT, 0)
    assert lost > 0  # the colour-dropping rephrasings (of sentences with a couch)
    sent = _chats(httpserver)
    assert sent == rw["requested"] + ln["requested"] == rw["requests_sent"]

    httpserver.clear_log()  # a rerun with the warm cache: the same table, and no chat request at all
    code, text = _build(vg, tmp_path / "b", url, cache, "--llm-negatives")
    assert code == 0, text
    assert _chats(httpserver) == 0 and [r.path for r, _ in httpserver.log] == ["/api/tags"]
    assert read_report(tmp_path / "b")["rewrites"]["cache_hits"] == sent
    assert list(read_rows(tmp_path / "b")) == rows


def test_rewrite_off_keeps_the_old_schema(tiny_vg, tmp_path):
    import pyarrow.parquet as pq

    from kgaug.table import TABLE_SCHEMA

    code, text = run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(tmp_path / "o"), "--no-wordnet")
    assert code == 0, text
    assert pq.read_schema(next((tmp_path / "o" / "table").glob("*.parquet"))).remove_metadata() == TABLE_SCHEMA
    report = read_report(tmp_path / "o")
    assert "rewrite" not in report["options"] and "rewrites" not in report


@pytest.mark.slow
@pytest.mark.parametrize("source", ["coco", "vg"])
def test_real_samples_through_the_loopback_server(httpserver, tmp_path, source, coco_mini_dir, vg_sample_dir,
                                                  spacy_model):
    """The COCO mini and the VG sample, rewritten through the client against the scripted server: the
    build finishes, counts every request by outcome, and for COCO the table still shards (clusterbuild
    reads the LLM-origin fields it does not know)."""
    _tags(httpserver)
    httpserver.expect_request("/api/chat", method="POST").respond_with_handler(scripted)
    url = httpserver.url_for("/").rstrip("/")
    out = tmp_path / "kg"
    common = ["--out", str(out), "--rewrite", "ollama", "--ollama-model", MODEL, "--ollama-host", url,
              "--rewrites-per-image", "1", "--rewrite-workers", "4", "--ollama-backoff", "0", "--ollama-timeout", "5"]
    if source == "coco":
        d = coco_mini_dir
        code, text = run_build("--source", "coco", "--captions", str(d / "captions_val2017_subset.json"),
                               "--images", str(d / "images"), "--spacy-model", spacy_model, "--no-wordnet", *common)
    else:
        code, text = run_build("--source", "vg", "--vg-dir", str(vg_sample_dir), "--no-wordnet", *common)
    assert code == 0, text
    rows = list(read_rows(out))
    rw = read_report(out)["rewrites"]
    llm = [p for r in rows for p in r["pseudo_captions"] if p["origin"] == "llm"]
    assert rw["requested"] == len(rows) and rw["accepted"] == len(llm) > 0
    assert rw["accepted"] + rw["rejected"] == rw["requested"] == _chats(httpserver)
    if source == "coco":
        from typer.testing import CliRunner

        from clusterbuild.cli import app
        from clusterbuild.validate import validate_folder

        shards = tmp_path / "shards"
        r = CliRunner().invoke(app, ["shard", str(out), "--out", str(shards), "--model", "kgclip-tiny-64",
                                     "--cluster-size", "40", "--quiet"])
        assert r.exit_code == 0, r.output
        assert validate_folder(shards) == []
