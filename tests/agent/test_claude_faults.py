"""Fault cases of the Claude agent: rate limits, overload storms, slow answers, dead endpoints, no key."""

from __future__ import annotations

import socket
import time

import pytest

from enpire.agent.claude import ClaudeAgent
from enpire.agent.errors import AgentConfigError, AgentGaveUp
from enpire.agent.registry import make_agent
from enpire.spec import ExperimentSpec
from tests.agent.fake_anthropic import FakeMessagesAPI, error, research_state, slow, tool_call, usage
from tests.agent.test_claude_agent import make, params_proposal


def test_429_then_success_is_retried_by_the_sdk_and_only_the_answer_is_billed(spec: ExperimentSpec) -> None:
    good = params_proposal(spec, "A plain proposal after a rate limit.", 0.5)
    with FakeMessagesAPI([error(429), tool_call(good, usage(1400, 90))]) as api:
        reply = make(spec, api).propose(research_state(spec))
    assert reply.proposal == good and reply.error is None and reply.tokens == 1490
    assert [r["headers"].get("x-stainless-retry-count") for r in api.requests] == ["0", "1"]


def test_429_backoff_follows_retry_after(spec: ExperimentSpec) -> None:
    good = params_proposal(spec, "A plain proposal after a slow-down.", 0.5)
    with FakeMessagesAPI([error(429, retry_after_ms=600), tool_call(good)]) as api:
        t0 = time.monotonic()
        assert make(spec, api).propose(research_state(spec)).proposal == good
        waited = api.requests[1]["t"] - api.requests[0]["t"]
    assert 0.55 <= waited < 3.0 and time.monotonic() - t0 < 5.0


def test_storm_of_529s_fails_the_call_then_the_agent_gives_up(spec: ExperimentSpec) -> None:
    """max_retries=2: three attempts a call; three failed calls in a row: the fourth propose() raises."""
    with FakeMessagesAPI([error(529) for _ in range(9)]) as api:
        agent = make(spec, api, max_retries=2, max_consecutive_failures=3)
        replies = [agent.propose(research_state(spec)) for _ in range(3)]
        assert len(api.requests) == 9
        with pytest.raises(AgentGaveUp, match="3 consecutive failures") as stop:
            agent.propose(research_state(spec))
    assert len(api.requests) == 9  # giving up starts no call
    for reply in replies:
        assert reply.proposal is None and reply.tokens == 0
        assert "529" in reply.error and "overloaded_error" in reply.error
    assert stop.value.agent == "claude-0" and len(stop.value.failures) == 3


def test_a_success_resets_the_failure_run(spec: ExperimentSpec) -> None:
    good = params_proposal(spec, "Recovering after an overloaded endpoint.", 0.5)
    script = [error(529), tool_call(good), error(529), error(529)]
    with FakeMessagesAPI(script) as api:
        agent = make(spec, api, max_retries=0, max_consecutive_failures=2)
        outcomes = [agent.propose(research_state(spec)) for _ in range(4)]
        with pytest.raises(AgentGaveUp, match="2 consecutive failures"):
            agent.propose(research_state(spec))
    assert [o.proposal is not None for o in outcomes] == [False, True, False, False]
    assert len(api.requests) == 4


def test_response_slower_than_the_deadline_returns_an_error_reply_on_time(spec: ExperimentSpec) -> None:
    good = params_proposal(spec, "Eventually answered, too late to count.", 0.5)
    fast = params_proposal(spec, "The next call is served normally.", 0.6)
    with FakeMessagesAPI([slow(5.0, tool_call(good)), tool_call(fast, usage(1000, 50))]) as api:
        agent = make(spec, api, call_timeout_s=0.5, max_retries=0)
        t0 = time.monotonic()
        late = agent.propose(research_state(spec))
        elapsed = time.monotonic() - t0
        nxt = agent.propose(research_state(spec))
    assert late.proposal is None and late.error.startswith("deadline") and "0.5 s" in late.error
    assert 0.45 <= elapsed < 1.5
    assert nxt.proposal == fast and nxt.tokens == 1050  # the agent recovers with a fresh client


def test_deadline_covers_the_sdk_retries_too(spec: ExperimentSpec) -> None:
    """Each 529 asks for a 400 ms wait; 4 retries would take ~2 s, the hard deadline stops at 0.8 s."""
    with FakeMessagesAPI([error(529, retry_after_ms=400) for _ in range(5)]) as api:
        agent = make(spec, api, call_timeout_s=0.8, max_retries=4)
        t0 = time.monotonic()
        reply = agent.propose(research_state(spec))
        elapsed = time.monotonic() - t0
    assert reply.error.startswith("deadline") and 0.75 <= elapsed < 1.5


def test_unreachable_endpoint_is_an_error_reply(spec: ExperimentSpec) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with FakeMessagesAPI() as api:
        agent = make(spec, api, max_retries=0, base_url=f"http://127.0.0.1:{port}")
        reply = agent.propose(research_state(spec))
    assert api.requests == []
    assert reply.proposal is None and reply.error.startswith("connection")


def test_missing_key_is_named(spec: ExperimentSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(AgentConfigError, match="ANTHROPIC_API_KEY is not set"):
        make_agent(spec, index=0, seed=0)
    assert ClaudeAgent.__init__.__code__.co_varnames.count("api_key") == 0  # no way to pass one in
