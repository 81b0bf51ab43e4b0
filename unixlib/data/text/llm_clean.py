"""LLM report cleaning with self-judgment (DESIGN.md section 4; PAPER.md "Data cleaning").

The paper rewrote reports with DeepSeek and a "self-judgment" loop; its prompt is not
published, so :data:`CLEAN_PROMPT` is ours. Any OpenAI-compatible chat endpoint works:
``POST {base_url}/chat/completions`` with ``{model, messages, temperature: 0}``; the API key
comes only from the environment variable named by :class:`LLMConfig` and is never logged,
cached or written.

Self-judgment (:func:`unixlib.data.text.judge.judge_rewrite`, the same judgment every rule-cleaned
row gets): a rewrite is accepted only if it is in ``FINDINGS: ... IMPRESSION: ...`` format,
keeps no de-identification span, and states the same 14 labels, and for each positive or
uncertain finding the same side and severity, as the *raw* FINDINGS + IMPRESSION text.
Raw, not rule-cleaned, text is the reference because hedges and comparisons in the raw
wording are part of the signal.

A rejected rewrite is retried with the judge's reason appended to the conversation; after
``max_attempts`` the caller falls back to the rule-cleaned text. Every attempt is one request;
transport failures (HTTP errors, timeouts, malformed replies) also use up an attempt and back
off exponentially (``backoff_s * 2 ** (attempt - 1)``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from unixlib.config.progress import bar
from unixlib.data.text.judge import judge_rewrite
from unixlib.data.text.reports import format_report, split_report

log = logging.getLogger(__name__)

# Bump whenever CLEAN_PROMPT or the judge changes: it is part of every cache key.
PROMPT_VERSION = "clean-v2"
CLEAN_PROMPT = """\
You clean chest X-ray radiology reports for training a report-generation model.
Rewrite the report the user sends into exactly this one-line format:
FINDINGS: <findings sentences> IMPRESSION: <impression sentences>

Rules:
- Keep every clinical finding: normal and abnormal, positive and negative ("no pneumothorax"),
  with its uncertainty ("possible", "may represent", "cannot exclude"), severity ("mild",
  "moderate", "large"), size, location and laterality ("left", "right", "bilateral") exactly
  as stated. Keep support devices (tubes, lines, catheters, pacemakers) and their position.
- Do not add, infer or upgrade findings. Do not turn an uncertain finding into a definite one
  or a definite one into an uncertain one.
- Remove de-identification placeholders ("___", "XXXX") and any words that only made sense
  with them (dates, times, names, "Dr. ___"). Never output "___" or "XXXX".
- Remove comparisons with prior studies. If a sentence states a finding, restate the finding
  in the present tense ("In comparison with the study of ___, there is little change in the
  substantial enlargement of the cardiomediastinal silhouette" -> "There is substantial
  enlargement of the cardiomediastinal silhouette."). If it only talks about the comparison
  ("No change since the prior study."), delete it.
- Remove technique and examination descriptions ("PA and lateral views of the chest were
  obtained"), indication and history, notifications ("Dr. ___ was notified by telephone",
  "findings were discussed with ..."), recommendations and fillers ("please see", "clinical
  correlation is recommended").
- Put the findings under FINDINGS and the conclusions under IMPRESSION. If the report has no
  impression, summarise nothing new: repeat its main findings briefly. If it has no findings
  section, write only the impression ("IMPRESSION: ...").
- Output only the rewritten report: no preamble, no markdown, no explanations."""
RETRY_MESSAGE = (
    "That rewrite was rejected: {reason}. Rewrite the original report again, following every "
    "rule; keep each finding with its negation, uncertainty, severity and laterality."
)
CACHE_FILE = "llm_clean.jsonl"


@dataclass(frozen=True)
class LLMConfig:
    """An OpenAI-compatible chat endpoint used for cleaning."""

    base_url: str  # e.g. "https://api.deepseek.com/v1"; "/chat/completions" is appended
    model: str  # e.g. "deepseek-chat"
    api_key_env: str = "UNIX_LLM_API_KEY"  # name of the environment variable holding the key
    concurrency: int = 4  # parallel requests (threads)
    max_attempts: int = 3  # requests per report, judge rejections and transport errors alike
    timeout_s: float = 60.0  # per request
    backoff_s: float = 1.0  # first back-off after a transport error; doubles each time


@dataclass(frozen=True)
class LLMResult:
    """Outcome for one raw report: ``text`` is the accepted rewrite ("" when not ``ok``)."""

    text: str
    ok: bool
    reason: str  # why the last attempt failed ("" when ok)
    attempts: int


class LLMError(RuntimeError):
    """A configuration error no retry can fix (missing or rejected API key)."""


LLM_CLEANING_MODES = ("auto", "on", "off")


def llm_config(
    mode: str, base_url: str, model: str, api_key_env: str = "UNIX_LLM_API_KEY"
) -> LLMConfig | None:
    """The endpoint notebook 01 cleans with, by its ``llm_cleaning`` parameter.

    ``on``: the paper's LLM cleaning is required, so an endpoint (``base_url`` and ``model``)
    must be configured (``LLMError`` otherwise); ``off``: rules only, whatever is configured
    (the tables then say "rule-cleaned"); ``auto``: the LLM when an endpoint is configured.
    """
    if mode not in LLM_CLEANING_MODES:
        raise ValueError(f"llm_cleaning must be one of {LLM_CLEANING_MODES}, got {mode!r}")
    configured = bool(base_url and model)
    if mode == "on" and not configured:
        raise LLMError(
            "llm_cleaning is 'on' (the paper cleans reports with an LLM) but no endpoint is "
            "configured: set llm_base_url and llm_model (key in $" + api_key_env + "), or "
            "--set 01_clean_data.llm_cleaning=off for rule cleaning (tables say rule-cleaned)"
        )
    if mode == "off" or not configured:
        return None
    return LLMConfig(base_url=base_url, model=model, api_key_env=api_key_env)


class TransportError(Exception):
    """A failed request worth retrying; the message is the reason recorded."""


def api_key(cfg: LLMConfig) -> str:
    """The API key from ``cfg.api_key_env``; raises :class:`LLMError` when it is unset."""
    key = os.environ.get(cfg.api_key_env, "")
    if not key:
        raise LLMError(
            f"an LLM is configured ({cfg.model} at {cfg.base_url}) but the environment "
            f"variable {cfg.api_key_env} holding its API key is not set"
        )
    return key


def cache_key(model: str, raw: str) -> str:
    """sha256 of (model, prompt version, raw text); the API key never enters it."""
    return hashlib.sha256(json.dumps([model, PROMPT_VERSION, raw]).encode()).hexdigest()


class ReportCache:
    """Append-only JSON-lines cache ``{key, ok, text, reason, attempts}``, safe across threads.

    Appending one line per finished report makes a killed run resumable: a rerun reads the
    file and only requests reports without a line. A half-written last line is removed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._rows: dict[str, LLMResult] = {}
        if path.exists():
            lines = path.read_text().splitlines()
            for i, line in enumerate(lines):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    if i < len(lines) - 1:
                        raise ValueError(f"{path}:{i + 1}: corrupt cache line") from e
                    # A run killed mid-write: drop the partial line so appends start clean.
                    log.warning("%s: dropping a truncated last line", path)
                    path.write_text("".join(f"{kept}\n" for kept in lines[:-1]))
                    continue
                self._rows[row["key"]] = LLMResult(
                    row["text"], row["ok"], row["reason"], row["attempts"]
                )

    def get(self, key: str) -> LLMResult | None:
        return self._rows.get(key)

    def put(self, key: str, result: LLMResult) -> None:
        row = {"key": key, **result.__dict__}
        with self._lock:
            self._rows[key] = result
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")


def chat(cfg: LLMConfig, key: str, messages: list[dict[str, str]]) -> str:
    """One ``/chat/completions`` request; returns the reply text.

    Raises:
        LLMError: the endpoint rejected the key (HTTP 401/403).
        TransportError: any other HTTP error, a timeout, a broken connection, or a reply
            without ``choices[0].message.content``.
    """
    body = json.dumps({"model": cfg.model, "messages": messages, "temperature": 0}).encode()
    request = urllib.request.Request(
        cfg.base_url.rstrip("/") + "/chat/completions",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=cfg.timeout_s) as response:
            payload = response.read()
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise LLMError(
                f"{cfg.base_url} rejected the key in {cfg.api_key_env} (HTTP {e.code})"
            ) from e
        raise TransportError(f"http {e.code}") from e
    except TimeoutError as e:
        raise TransportError("timeout") from e
    except urllib.error.URLError as e:
        timed_out = isinstance(e.reason, TimeoutError)
        raise TransportError("timeout" if timed_out else f"connection error: {e.reason}") from e
    except (ConnectionError, http.client.HTTPException) as e:
        raise TransportError(f"connection error: {type(e).__name__}") from e
    try:
        content = json.loads(payload)["choices"][0]["message"]["content"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as e:
        raise TransportError("malformed reply") from e
    if not isinstance(content, str):
        raise TransportError("malformed reply")
    return content


def rewrite_report(raw: str, cfg: LLMConfig, key: str) -> tuple[LLMResult, bool]:
    """Rewrite one report with up to ``cfg.max_attempts`` requests.

    Returns ``(result, cacheable)``; a result whose last failure was a transport error is not
    cacheable, so that a rerun tries it again.
    """
    messages = [{"role": "system", "content": CLEAN_PROMPT}, {"role": "user", "content": raw}]
    reason, transport = "", False
    for attempt in range(1, cfg.max_attempts + 1):
        try:
            reply = chat(cfg, key, messages)
        except TransportError as e:
            reason, transport = str(e), True
            if attempt < cfg.max_attempts:
                time.sleep(cfg.backoff_s * 2 ** (attempt - 1))
            continue
        candidate = _normalise(reply)
        reason, transport = judge_rewrite(raw, candidate), False
        if not reason:
            return LLMResult(candidate, True, "", attempt), True
        messages += [
            {"role": "assistant", "content": reply},
            {"role": "user", "content": RETRY_MESSAGE.format(reason=reason)},
        ]
    return LLMResult("", False, reason, cfg.max_attempts), not transport


def _normalise(reply: str) -> str:
    """Strip code fences and re-join the sections on one line (when the format parses)."""
    text = re.sub(r"^```\w*\s*|\s*```$", "", reply.strip())
    try:
        return format_report(*(" ".join(s.split()) for s in split_report(text)))
    except ValueError:
        return text


def llm_clean_reports(
    texts: Sequence[str], cfg: LLMConfig, cache_dir: Path | None = None
) -> list[LLMResult]:
    """Rewrite many raw reports (one result per input, same order).

    Identical texts are requested once. With ``cache_dir`` results are read from and appended
    to ``cache_dir / CACHE_FILE``; a cached acceptance is re-judged with the current labeler
    (cheap) and requested again if it no longer passes. Raises :class:`LLMError` before any
    request when the API key is missing.
    """
    key = api_key(cfg)
    cache = ReportCache(cache_dir / CACHE_FILE) if cache_dir is not None else None
    unique = list(dict.fromkeys(texts))
    done: dict[str, LLMResult] = {}
    for raw in unique:
        hit = cache.get(cache_key(cfg.model, raw)) if cache else None
        if hit is not None and (not hit.ok or not judge_rewrite(raw, hit.text)):
            done[raw] = hit
    todo = [raw for raw in unique if raw not in done]
    log.info("LLM cleaning: %d cached, %d to request", len(done), len(todo))

    def work(raw: str) -> LLMResult:
        result, cacheable = rewrite_report(raw, cfg, key)
        if cache is not None and cacheable:
            cache.put(cache_key(cfg.model, raw), result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, cfg.concurrency)) as pool:
        results = bar(pool.map(work, todo), total=len(todo), desc="LLM cleaning", unit="report")
        done.update(zip(todo, results, strict=True))
    return [done[raw] for raw in texts]
