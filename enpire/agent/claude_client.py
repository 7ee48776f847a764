"""One Messages API call with the SDK's retries inside and a hard deadline outside.

The SDK retries 408/409/429/5xx/529 with exponential backoff (`max_retries`) and gives each
attempt `call_timeout_s`; but retries plus backoff can add up to many times that, and a
server that trickles bytes can hold a socket open. So the whole call (all attempts) also
runs in a daemon thread watched by `call_with_deadline`: when the deadline passes the agent
stops waiting, the client is closed and rebuilt, and the caller gets a CallFailed.

The API key is read from the environment (ANTHROPIC_API_KEY) only, handed straight to the
SDK, and never stored on the agent, logged or put into an error message.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anthropic
import httpx2

from enpire.agent.errors import AgentConfigError

log = logging.getLogger(__name__)

KEY_ENV = "ANTHROPIC_API_KEY"
T = TypeVar("T")


@dataclass(frozen=True)
class ClaudeOptions:
    """The agent=claude config group, typed (ranges were checked by specs/agent.schema.json)."""

    model: str
    max_tokens: int
    temperature: float | None
    thinking: str  # "off" | "enabled" | "adaptive"
    thinking_budget_tokens: int
    base_url: str | None
    call_timeout_s: float
    max_retries: int
    max_consecutive_failures: int
    max_corrections: int
    cache_prompt: bool
    history: int
    trials_per_candidate: int
    images: int = 0  # stills per context (enpire.agent.claude_evidence)
    image_size: tuple[int, int] = (256, 192)
    tools: bool = False  # investigation tools beside propose_experiment
    max_tool_calls: int = 0

    @classmethod
    def from_options(cls, o: Any) -> ClaudeOptions:
        get = o.get
        return cls(model=str(get("model")), max_tokens=int(get("max_tokens")),
                   temperature=None if get("temperature") is None else float(get("temperature")),
                   thinking=str(get("thinking", "off")), thinking_budget_tokens=int(get("thinking_budget_tokens", 0)),
                   base_url=get("base_url"), call_timeout_s=float(get("call_timeout_s")),
                   max_retries=int(get("max_retries")), max_consecutive_failures=int(get("max_consecutive_failures")),
                   max_corrections=int(get("max_corrections", 2)), cache_prompt=bool(get("cache_prompt", True)),
                   history=int(get("history", 40)), trials_per_candidate=int(get("trials_per_candidate")),
                   images=int(get("images", 0)), image_size=_size(get("image_size", (256, 192))),
                   tools=bool(get("tools", False)), max_tool_calls=int(get("max_tool_calls", 0)))


def _size(value: Any) -> tuple[int, int]:
    width, height = (int(v) for v in value)
    return width, height


class CallFailed(Exception):
    """A call that produced no usable response; `kind` is deadline|status|connection|other."""

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        self.kind, self.status = kind, status
        super().__init__(message)


MAX_TOKENS_PER_CALL = 10_000_000  # more than any one call can use: a larger count is not believed
USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _count(value: Any) -> int | None:
    """A token count as an int, or None when it is not a count (negative, fractional, huge, not a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_TOKENS_PER_CALL else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return _count(int(value))
    return None


@dataclass(frozen=True)
class CallUsage:
    """Token counts of one response, from its `usage` block, validated.

    Counts are exact where the response gave a plausible one (an integer in
    [0, MAX_TOKENS_PER_CALL]). A missing or implausible input_tokens / output_tokens is replaced
    by an estimate (characters / 4 of the request / of the answer) and named in `problems` and
    `estimated`; an implausible cache count counts 0. Nothing here raises."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    problems: tuple[str, ...] = ()
    estimated: tuple[str, ...] = ()  # fields whose count is an estimate

    @property
    def tokens_in(self) -> int:
        """Every input token the call consumed: uncached, written to the cache, read from it."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def as_dict(self) -> dict[str, Any]:
        return {**{f: getattr(self, f) for f in USAGE_FIELDS}, "tokens_in": self.tokens_in,
                "tokens_out": self.output_tokens, "problems": list(self.problems), "estimated": list(self.estimated)}

    @classmethod
    def of(cls, message: Any, estimate_in: int = 0, estimate_out: int = 0) -> CallUsage:
        u = getattr(message, "usage", None)
        if u is not None and not isinstance(u, dict) and not hasattr(u, "input_tokens"):
            u = None  # not a usage block at all (a number, a string, a list)
        raw = {f: (u.get(f) if isinstance(u, dict) else getattr(u, f, None)) for f in USAGE_FIELDS} if u else {}
        problems: list[str] = [] if u is not None else ["the response has no usage"]
        counts: dict[str, int] = {}
        for f in USAGE_FIELDS:
            value = raw.get(f)
            n = _count(value)
            if n is None and (value is not None or f in USAGE_FIELDS[:2]) and u is not None:
                problems.append(f"usage.{f}: got {str(value)[:40]!r}; expected an integer in "
                                f"[0, {MAX_TOKENS_PER_CALL}]")
            counts[f] = n if n is not None else -1
        estimated = []
        cache = sum(max(0, counts[f]) for f in USAGE_FIELDS[2:])
        for f in USAGE_FIELDS[2:]:
            counts[f] = max(0, counts[f])
        if counts["input_tokens"] < 0:
            counts["input_tokens"] = max(0, min(int(estimate_in), MAX_TOKENS_PER_CALL) - cache)
            estimated.append("input_tokens")
        if counts["output_tokens"] < 0:
            counts["output_tokens"] = max(0, min(int(estimate_out), MAX_TOKENS_PER_CALL))
            estimated.append("output_tokens")
        return cls(*(counts[f] for f in USAGE_FIELDS), problems=tuple(problems), estimated=tuple(estimated))


def api_key_from_env() -> str:
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise AgentConfigError(f"{KEY_ENV} is not set: the Claude agent reads its API key from the environment "
                               f"only (export {KEY_ENV}=...; it is never read from config)")
    return key


def build_client(opts: ClaudeOptions, http_client: httpx2.Client | None = None) -> anthropic.Anthropic:
    """An SDK client: key from the environment, base URL from config or ANTHROPIC_BASE_URL."""
    return anthropic.Anthropic(api_key=api_key_from_env(), base_url=opts.base_url or None,
                               max_retries=opts.max_retries, timeout=opts.call_timeout_s, http_client=http_client)


def call_with_deadline(fn: Callable[[], T], deadline_s: float, name: str = "claude") -> T:
    """fn() in a daemon thread; CallFailed('deadline') when it has not returned within deadline_s."""
    box: dict[str, Any] = {}
    finished = threading.Event()

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as error:  # handed to the caller's thread below
            box["error"] = error
        finally:
            finished.set()

    threading.Thread(target=run, name=f"{name}-call", daemon=True).start()
    if not finished.wait(deadline_s):
        raise CallFailed("deadline", f"no response within the {deadline_s:.1f} s deadline (call_timeout_s)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def describe_api_error(error: Exception, timeout_s: float | None = None) -> CallFailed:
    """A CallFailed naming what went wrong; never includes request headers (where the key is)."""
    if isinstance(error, CallFailed):
        return error
    if isinstance(error, anthropic.APITimeoutError):
        limit = f" ({timeout_s:.1f} s, call_timeout_s)" if timeout_s is not None else ""
        return CallFailed("deadline", f"the SDK's per-attempt timeout{limit} passed on every attempt")
    if isinstance(error, anthropic.APIStatusError):
        kind = getattr(error, "type", None) or type(error).__name__
        return CallFailed("status", f"HTTP {error.status_code} ({kind}) after the SDK's retries: "
                          f"{str(error.message)[:300]}", status=error.status_code)
    if isinstance(error, anthropic.APIConnectionError):
        return CallFailed("connection", f"could not reach the Messages API ({type(error).__name__})")
    return CallFailed("other", f"{type(error).__name__}: {str(error)[:300]}")


class MessagesCaller:
    """Owns the SDK client; `create(**params)` is one call under the hard deadline."""

    def __init__(self, opts: ClaudeOptions, name: str, http_client: httpx2.Client | None = None) -> None:
        self._opts, self._name, self._http_client = opts, name, http_client
        self._client = build_client(opts, http_client)

    def create(self, params: dict[str, Any], deadline_s: float) -> Any:
        client = self._client
        try:
            return call_with_deadline(lambda: client.messages.create(**params), deadline_s, self._name)
        except CallFailed as failed:
            if failed.kind == "deadline":
                self._abandon(client)
            raise
        except Exception as error:
            raise describe_api_error(error, self._opts.call_timeout_s) from None

    def _abandon(self, client: anthropic.Anthropic) -> None:
        """Stop the abandoned call's retries from reusing this client; the next call gets a fresh one."""
        log.warning("%s: call abandoned at its deadline; rebuilding the client", self._name)
        if self._http_client is None:  # an injected transport belongs to the caller
            try:
                client.close()
            except Exception:  # closing under a running request may fail; nothing else to do
                log.debug("closing the abandoned client failed", exc_info=True)
            self._client = build_client(self._opts, None)
