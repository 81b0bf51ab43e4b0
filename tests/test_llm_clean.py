"""LLM cleaning against a real local HTTP server emulating ``/chat/completions``.

The server (``http.server`` on 127.0.0.1, port 0) answers from a per-report script, so each
test states exactly which replies the "LLM" gives and asserts statuses, texts, request counts
and what was sent.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from unixlib.data.text.clean import CleanStats, clean_manifest
from unixlib.data.text.judge import judge_rewrite
from unixlib.data.text.llm_clean import (
    CACHE_FILE,
    CLEAN_PROMPT,
    LLMConfig,
    LLMError,
    cache_key,
)
from unixlib.data.text.reports import rule_clean

SECRET = "sk-test-SECRET-4242"
RAW = (
    "FINDINGS: In comparison with the study of ___, there is a large left pleural effusion. "
    "No pneumothorax. IMPRESSION: Large left pleural effusion."
)
GOOD = "FINDINGS: There is a large left pleural effusion. No pneumothorax. IMPRESSION: Large left pleural effusion."
DROPPED = "FINDINGS: No pneumothorax. IMPRESSION: No acute process."
DEID_LEFT = "FINDINGS: There is a large left pleural effusion since ___. No pneumothorax. IMPRESSION: Large left pleural effusion."


class FakeLLM:
    """Scripted chat endpoint: ``script[raw]`` is the list of behaviours for successive calls.

    Behaviours: ``("reply", text)``, ``("status", code)``, ``("malformed",)``,
    ``("sleep", seconds, text)``, ``("barrier", text)`` (wait until two requests are in flight).
    The last behaviour repeats once the list is used up.
    """

    def __init__(self) -> None:
        self.script: dict[str, list[tuple]] = {}
        self.requests: list[dict] = []  # {"raw", "body", "auth"} per call
        self.lock = threading.Lock()
        self.barrier = threading.Barrier(2, timeout=5)

    def calls(self, raw: str | None = None) -> int:
        return sum(1 for r in self.requests if raw is None or r["raw"] == raw)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        raw = body["messages"][1]["content"]
        with self.lock:
            n = self.calls(raw)
            self.requests.append(
                {"raw": raw, "body": body, "auth": handler.headers.get("Authorization")}
            )
        steps = self.script[raw]
        step = steps[min(n, len(steps) - 1)]
        if step[0] == "status":
            return self._send(handler, step[1], b"{}")
        if step[0] == "malformed":
            return self._send(handler, 200, b"this is not json")
        if step[0] == "sleep":
            time.sleep(step[1])
        if step[0] == "barrier":
            try:
                self.barrier.wait()
            except threading.BrokenBarrierError:
                return self._send(handler, 503, b"{}")
        reply = {"choices": [{"message": {"role": "assistant", "content": step[-1]}}]}
        self._send(handler, 200, json.dumps(reply).encode())

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, code: int, payload: bytes) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            handler.wfile.write(payload)  # the client may have given up (the timeout test)


@pytest.fixture
def server() -> Iterator[tuple[FakeLLM, str]]:
    fake = FakeLLM()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert self.path == "/v1/chat/completions"
            fake.handle(self)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("UNIX_LLM_API_KEY", SECRET)
    return SECRET


def _cfg(url: str, **kw: object) -> LLMConfig:
    return LLMConfig(**{"base_url": url, "model": "fake-1", "backoff_s": 0.01, **kw})


def _run(tmp_path: Path, raws: list, cfg: LLMConfig | None) -> tuple[pd.DataFrame, CleanStats]:
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pd.DataFrame({"id": [f"r{i}" for i in range(len(raws))], "report_raw": raws}).to_parquet(src)
    stats = clean_manifest(src, out, cfg, cache_dir=tmp_path / "cache")
    return pd.read_parquet(out), stats


def test_good_rewrite_accepted_and_request_shape(server, key, tmp_path) -> None:
    fake, url = server
    fenced = "```text\n" + GOOD.replace(" IMPRESSION", "\nIMPRESSION") + "\n```"
    fake.script[RAW] = [("reply", fenced)]
    df, stats = _run(tmp_path, [RAW], _cfg(url))
    assert df.clean_status.tolist() == ["llm"] and df.report_clean.tolist() == [GOOD]
    assert stats.by_status == {"llm": 1} and stats.count("llm") == 1
    (req,) = fake.requests
    assert req["auth"] == f"Bearer {SECRET}"
    assert req["body"]["model"] == "fake-1" and req["body"]["temperature"] == 0
    assert req["body"]["messages"][0] == {"role": "system", "content": CLEAN_PROMPT}


def test_dropped_finding_retried_then_fallback(server, key, tmp_path) -> None:
    fake, url = server
    fake.script[RAW] = [("reply", DROPPED)]
    df, stats = _run(tmp_path, [RAW], _cfg(url, max_attempts=3))
    assert fake.calls(RAW) == 3
    status = df.clean_status.iloc[0]
    assert status.startswith("fallback:labels differ: ")
    assert "pleural_effusion positive->not mentioned" in status
    assert df.report_clean.iloc[0] == rule_clean(RAW).text
    assert stats.count("fallback") == 1
    # the retry carries the rejected reply and the judge's reason
    retry = fake.requests[1]["body"]["messages"]
    assert retry[2] == {"role": "assistant", "content": DROPPED}
    assert "pleural_effusion positive->not mentioned" in retry[3]["content"]


def test_rejected_then_accepted(server, key, tmp_path) -> None:
    fake, url = server
    fake.script[RAW] = [("reply", DEID_LEFT), ("reply", GOOD)]
    df, _ = _run(tmp_path, [RAW], _cfg(url))
    assert (fake.calls(RAW), df.clean_status.iloc[0], df.report_clean.iloc[0]) == (2, "llm", GOOD)


def test_deid_span_left_is_rejected(server, key, tmp_path) -> None:
    fake, url = server
    fake.script[RAW] = [("reply", DEID_LEFT)]
    df, _ = _run(tmp_path, [RAW], _cfg(url, max_attempts=2))
    assert (
        df.clean_status.iloc[0] == "fallback:de-identification span (___ or XXXX) left in the text"
    )
    assert fake.calls(RAW) == 2


def test_judge_rules() -> None:
    assert judge_rewrite(RAW, GOOD) == ""
    assert judge_rewrite(RAW, "There is a large left pleural effusion.").startswith("not in")
    assert judge_rewrite(RAW, "FINDINGS: IMPRESSION:") == "empty findings and impression"
    # a dropped negative (0 -> NaN) is a dropped finding too
    dropped_negative = (
        "FINDINGS: There is a large left pleural effusion. IMPRESSION: Large left pleural effusion."
    )
    assert "pneumothorax negative->not mentioned" in judge_rewrite(RAW, dropped_negative)


@pytest.mark.parametrize(
    ("steps", "calls", "status"),
    [
        ([("status", 500), ("reply", GOOD)], 2, "llm"),
        ([("malformed",), ("reply", GOOD)], 2, "llm"),
        ([("sleep", 1.5, GOOD), ("reply", GOOD)], 2, "llm"),
        ([("status", 500)], 3, "fallback:http 500"),
        ([("malformed",)], 3, "fallback:malformed reply"),
    ],
)
def test_transport_failures_retried(server, key, tmp_path, steps, calls, status) -> None:
    fake, url = server
    fake.script[RAW] = steps
    df, _ = _run(tmp_path, [RAW], _cfg(url, timeout_s=0.5, max_attempts=3))
    assert (fake.calls(RAW), df.clean_status.iloc[0]) == (calls, status)


def test_timeout_status(server, key, tmp_path) -> None:
    fake, url = server
    fake.script[RAW] = [("sleep", 1.0, GOOD)]
    df, _ = _run(tmp_path, [RAW], _cfg(url, timeout_s=0.3, max_attempts=1))
    assert df.clean_status.iloc[0] == "fallback:timeout"


def test_cache_hit_and_transport_failures_not_cached(server, key, tmp_path) -> None:
    fake, url = server
    other = RAW.replace("left", "right")
    fake.script[RAW] = [("reply", GOOD)]
    fake.script[other] = [("malformed",)]
    first, _ = _run(tmp_path, [RAW, other], _cfg(url, max_attempts=1))
    assert fake.calls() == 2
    second, _ = _run(tmp_path, [RAW, other], _cfg(url, max_attempts=1))
    assert fake.calls(RAW) == 1  # served from the cache
    assert fake.calls(other) == 2  # a transport failure is asked again
    pd.testing.assert_frame_equal(first, second)


def test_resume_after_interrupted_run(server, key, tmp_path) -> None:
    fake, url = server
    raws = [RAW.replace("large", size) for size in ("large", "small", "moderate")]
    for r in raws:
        fake.script[r] = [("reply", r.replace("In comparison with the study of ___, t", "T"))]
    _run(tmp_path, raws, _cfg(url))
    cache = tmp_path / "cache" / CACHE_FILE
    lines = cache.read_text().splitlines()
    assert len(lines) == 3
    # simulate a run killed while writing its second line
    cache.write_text(lines[0] + "\n" + lines[1][:20])
    _, stats = _run(tmp_path, raws, _cfg(url))
    # only the two missing reports were requested again
    kept = json.loads(lines[0])["key"]
    missing = [r for r in raws if cache_key("fake-1", r) != kept]
    assert sorted(r["raw"] for r in fake.requests[3:]) == sorted(missing)
    assert stats.by_status == {"llm": 3}
    assert len(cache.read_text().splitlines()) == 3
    _run(tmp_path, raws, _cfg(url))  # the repaired cache loads and serves everything
    assert fake.calls() == 5


def test_key_never_written(server, key, tmp_path, caplog) -> None:
    fake, url = server
    fake.script[RAW] = [("reply", DROPPED), ("reply", GOOD)]
    caplog.set_level("DEBUG")
    df, _ = _run(tmp_path, [RAW], _cfg(url))
    assert fake.requests[0]["auth"] == f"Bearer {SECRET}"
    for path in [tmp_path / "out.parquet", *(tmp_path / "cache").iterdir()]:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in caplog.text and SECRET not in df.to_csv()


def test_missing_key_fails_before_any_request(server, tmp_path, monkeypatch) -> None:
    fake, url = server
    monkeypatch.delenv("MY_LLM_KEY", raising=False)
    with pytest.raises(LLMError, match="MY_LLM_KEY"):
        _run(tmp_path, [RAW], _cfg(url, api_key_env="MY_LLM_KEY"))
    assert fake.calls() == 0 and not (tmp_path / "out.parquet").exists()


def test_rejected_key_is_an_error(server, key, tmp_path) -> None:
    fake, url = server
    fake.script[RAW] = [("status", 401)]
    with pytest.raises(LLMError, match="HTTP 401"):
        _run(tmp_path, [RAW], _cfg(url))
    assert SECRET not in str(fake.requests[0]["body"])


def test_concurrent_requests(server, key, tmp_path) -> None:
    fake, url = server
    raws = [RAW.replace("large", f"large ({i})") for i in range(2)]
    for r in raws:  # each request waits until the other one is in flight too
        fake.script[r] = [("barrier", GOOD)]
    df, _ = _run(tmp_path, raws, _cfg(url, concurrency=2, max_attempts=1))
    assert fake.calls() == 2 and df.clean_status.tolist() == ["llm", "llm"]


def test_every_row_kept_with_status(server, key, tmp_path) -> None:
    fake, url = server
    sectionless_good = "There is a large left pleural effusion. No pneumothorax."
    sectionless_bad = "Large left pleural effusion."
    fake.script[RAW] = [("reply", GOOD)]
    fake.script[sectionless_good] = [("reply", GOOD)]
    fake.script[sectionless_bad] = [("reply", DROPPED)]
    raws = [RAW, "", None, RAW, sectionless_good, sectionless_bad]
    df, stats = _run(tmp_path, raws, _cfg(url, max_attempts=1))
    assert len(df) == len(raws) and df.id.tolist() == [f"r{i}" for i in range(6)]
    assert df.clean_status.tolist() == [
        "llm",
        "rejected:empty report",
        "rejected:empty report",
        "llm",
        "llm",
        "fallback:labels differ: pneumothorax not mentioned->negative, pleural_effusion "
        "positive->not mentioned, no_finding not mentioned->positive",
    ]
    # a rewrite that dropped the finding falls back to the rules, which read free text as findings
    assert df.report_clean.tolist() == [GOOD, "", "", GOOD, GOOD, rule_clean(sectionless_bad).text]
    assert rule_clean(sectionless_bad).text == "FINDINGS: Large left pleural effusion."
    assert fake.calls(RAW) == 1  # identical reports are requested once
    assert fake.calls() == 3
    assert stats.n_rows == 6 and stats.count("rejected") == 2 and stats.count("llm") == 3


def test_rules_only_manifest(tmp_path) -> None:
    df, stats = _run(tmp_path, [RAW, "", "INDICATION: cough."], None)
    assert df.clean_status.tolist() == [
        "rules",
        "rejected:empty report",
        "rejected:no findings or impression section",
    ]
    assert df.report_clean.iloc[0] == rule_clean(RAW).text
    assert stats.by_status == {
        "rules": 1,
        "rejected:empty report": 1,
        "rejected:no findings or impression section": 1,
    }
    with pytest.raises(ValueError, match="unknown status kind"):
        stats.count("ok")


def test_manifest_without_report_column(tmp_path) -> None:
    pd.DataFrame({"id": ["a"]}).to_parquet(tmp_path / "in.parquet")
    with pytest.raises(ValueError, match="report_raw"):
        clean_manifest(tmp_path / "in.parquet", tmp_path / "out.parquet")
