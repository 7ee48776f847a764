"""A scripted stand-in for the Anthropic Messages API: a real HTTP server on 127.0.0.1.

Tests point the SDK at it (base_url or ANTHROPIC_BASE_URL) with a fake key. Each POST
/v1/messages takes the next step of the script: a tool call, a text answer, an HTTP error
(429, 529, ...), optionally after a delay. With `autopilot=True` an exhausted script is
continued by a plausible researcher that proposes random parameters within the tool's input
schema (for a code policy: the worked drawer example with a random pull length), so a whole
session can run against it. Every request (body and headers) is kept in
memory, and every `usage` returned is summed in `tokens_returned`, so a test can compare the
session's token count with what the "API" billed.

Run by hand (e.g. for `python -m enpire agent=claude` without a key):
    python -m tests.agent.fake_anthropic --port 8765   # then ANTHROPIC_BASE_URL=http://127.0.0.1:8765
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "examples" / "policies" / "drawer_policy.py"
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error",
               500: "api_error", 503: "api_error", 529: "overloaded_error"}


@dataclass
class Step:
    """One scripted answer: HTTP status, JSON body, extra headers, delay before answering."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Script = list["Step | Callable[[dict[str, Any]], Step]"]
_ids = itertools.count(1)


def usage(input_tokens: int, output_tokens: int, cache_creation: int = 0, cache_read: int = 0) -> dict[str, int]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_creation, "cache_read_input_tokens": cache_read}


def _message(content: list[dict[str, Any]], stop: str, use: dict[str, int]) -> dict[str, Any]:
    return {"id": f"msg_fake{next(_ids):06d}", "type": "message", "role": "assistant", "model": "fake-claude",
            "content": content, "stop_reason": stop, "stop_sequence": None, "usage": use}


def tool_call(proposal: dict[str, Any], use: dict[str, int] | None = None, text: str | None = None,
              name: str = "propose_experiment", delay_s: float = 0.0) -> Step:
    """An answer that calls the tool with `proposal` (optionally after some text)."""
    content = [{"type": "text", "text": text}] if text else []
    content.append({"type": "tool_use", "id": f"toolu_fake{next(_ids):06d}", "name": name, "input": proposal})
    return Step(body=_message(content, "tool_use", use or usage(1200, 90)), delay_s=delay_s)


def text_answer(text: str, use: dict[str, int] | None = None) -> Step:
    """An answer with no tool call."""
    return Step(body=_message([{"type": "text", "text": text}], "end_turn", use or usage(1200, 40)))


def error(status: int, retry_after_ms: int | None = 5, message: str | None = None) -> Step:
    """An API error; retry-after-ms keeps the SDK's backoff short in tests (the real API sends retry-after)."""
    kind = ERROR_TYPES.get(status, "api_error")
    headers = {} if retry_after_ms is None else {"retry-after-ms": str(retry_after_ms)}
    return Step(status=status, body={"type": "error", "error": {"type": kind, "message": message or kind}},
                headers=headers)


def slow(seconds: float, then: Step) -> Step:
    """`then`, delivered only after `seconds`."""
    return Step(status=then.status, body=then.body, headers=then.headers, delay_s=seconds)


def autopilot_step(request: dict[str, Any], rng: random.Random, first: bool) -> Step:
    """A plausible researcher: random parameters within the tool's schema, usage sized by the request."""
    tool = request["tools"][0]
    cand = tool["input_schema"]["properties"]["candidate"]
    if "source" in cand.get("properties", {}):  # policy=code: the worked example, with a random pull length
        source = EXAMPLE_POLICY.read_text().replace("pull_distance=0.22", f"pull_distance={rng.uniform(0.2, 0.24):.3f}")
        proposal = {"hypothesis": "The worked example's set-point strategy with another pull length.",
                    "parent": None, "candidate": {"kind": "code", "source": source}}
    else:
        params = cand["properties"]["params"]["properties"]
        chosen = {n: round(rng.uniform(p["minimum"], p["maximum"]), 4) for n, p in params.items()
                  if rng.random() < 0.6} or {n: p["minimum"] for n, p in list(params.items())[:1]}
        proposal = {"hypothesis": f"Adjusting {', '.join(sorted(chosen))} should raise the success rate.",
                    "parent": None, "candidate": {"kind": "params", "params": chosen}}
    body_chars = len(json.dumps(request))
    system_chars = len(json.dumps(request.get("system", "")))
    cached = any(isinstance(b, dict) and b.get("cache_control") for b in request.get("system", []))
    cache_tokens = system_chars // 4 if cached else 0
    use = usage(max(1, (body_chars - (system_chars if cached else 0)) // 4), 30 + len(json.dumps(proposal)) // 4,
                cache_creation=cache_tokens if first else 0, cache_read=0 if first else cache_tokens)
    return tool_call(proposal, use)


class FakeMessagesAPI:
    """The server; use as a context manager. `url` is the base URL to give the SDK."""

    def __init__(self, script: Script | None = None, autopilot: bool = False, seed: int = 0,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.script: Script = list(script or [])
        self.autopilot = autopilot
        self.requests: list[dict[str, Any]] = []  # {"path", "headers", "body", "t"}
        self.responses: list[Step] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-anthropic", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def tokens_returned(self) -> int:
        """Sum of input (incl. cache) and output tokens over every 200 response sent."""
        return sum(sum(s.body["usage"].values()) for s in self.responses if s.status == 200)

    def message_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"].startswith("/v1/messages")]

    def __enter__(self) -> FakeMessagesAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _next(self, request: dict[str, Any]) -> Step:
        with self._lock:
            if self.script:
                step = self.script.pop(0)
                step = step(request) if callable(step) else step
            elif self.autopilot:
                first = not any(s.status == 200 for s in self.responses)
                step = autopilot_step(request, self._rng, first)
            else:
                step = error(400, None, "fake API: script exhausted")
            self.responses.append(step)
            return step

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_raw": raw.decode(errors="replace")}
                with api._lock:
                    api.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body,
                                         "t": time.monotonic()})
                step = api._next(body)
                if step.delay_s and api._stop.wait(step.delay_s):
                    return
                data = json.dumps(step.body).encode()
                try:
                    self.send_response(step.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.send_header("request-id", f"req_fake{next(_ids):06d}")
                    for k, v in step.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (deadline)
                    pass

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with FakeMessagesAPI(autopilot=True, seed=args.seed, port=args.port) as api:
        print(f"fake Messages API at {api.url} (autopilot); Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print(f"requests: {len(api.requests)}, tokens returned: {api.tokens_returned}")


if __name__ == "__main__":
    main()


def research_state(spec: Any, branch: str = "claude-0", iterations: tuple[Any, ...] = (),
                   used: dict[str, float] | None = None, branch_best: dict[str, Any] | None = None) -> Any:
    """A ResearchState of `spec` as the loop would build it (for tests that drive the agent directly)."""
    from enpire.agent.api import Budgets, ResearchState
    from enpire.agent.proposal import proposal_schema

    b = spec.budget
    limits = {"iterations": b.iterations, "trials": b.trials, "robot_seconds": b.robot_seconds,
              "wall_clock_s": b.wall_clock_s, "tokens": b.tokens, "trainer_seconds": b.trainer_seconds}
    space = {p.name: {"default": p.default, "low": p.low, "high": p.high, "unit": p.unit,
                      "description": p.description, "scale": p.scale} for p in spec.policy.params}
    goal = " and ".join(f"{c.quantity} {c.op} {c.value}" for c in spec.done.conditions)
    return ResearchState(task_name=spec.task.name, task_description=spec.task.description,
                         policy_kind=spec.policy.kind, action_mode=spec.policy.action_mode, search_space=space,
                         goal=f"{goal}, held {spec.done.hold_s} s; success rate >= {spec.done.min_success_rate} "
                              f"over {spec.done.window} trials",
                         branch=branch, iterations=tuple(iterations), branch_best=dict(branch_best or {}),
                         budgets=Budgets(used=dict(used or {}), limits=limits), proposal_schema=proposal_schema(
                             spec.policy))
