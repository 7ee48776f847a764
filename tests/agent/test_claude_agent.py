"""The Claude agent in a research conversation against a scripted Messages API on 127.0.0.1."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from enpire.agent.claude import ClaudeAgent
from enpire.agent.claude_prompt import TOOL_NAME
from enpire.agent.errors import TokenBudgetSpent
from enpire.agent.proposal import proposal_problems, proposal_schema
from enpire.records import IterationSummary
from enpire.spec import ExperimentSpec
from enpire.spec.frozen import freeze, thaw
from tests.agent.fake_anthropic import FakeMessagesAPI, research_state, text_answer, tool_call, usage


def make(spec: ExperimentSpec, api: FakeMessagesAPI, index: int = 0, **options: Any) -> ClaudeAgent:
    opts = {**thaw(spec.agent.options), "base_url": api.url, **options}
    return ClaudeAgent(spec, config=dataclasses.replace(spec.agent, options=freeze(opts)), index=index,
                       branch=f"claude-{index}", seed=0)


def params_proposal(spec: ExperimentSpec, hypothesis: str, scale: float = 0.5, parent: int | None = None) -> dict:
    p = spec.policy.params[0]
    return {"hypothesis": hypothesis, "parent": parent,
            "candidate": {"kind": "params", "params": {p.name: p.low + scale * (p.high - p.low)}}}


def summary(spec: ExperimentSpec, index: int, proposal: dict, rate: float, **kw: Any) -> IterationSummary:
    base = dict(index=index, agent="claude-0", branch="claude-0", parent=proposal.get("parent"),
                hypothesis=proposal["hypothesis"], candidate=proposal["candidate"], candidate_id=f"c{index}",
                decision="keep", success_rate=rate, pass_at_1=rate, pass_at_k=rate, trials=8, safety_stops=0,
                robot_seconds=30.0, tokens=1300)
    return IterationSummary(**{**base, **kw})


def test_research_conversation_uses_results_and_counts_every_token(spec: ExperimentSpec) -> None:
    first = params_proposal(spec, "A lower approach should catch the handle more often.", 0.2)
    second = params_proposal(spec, "Iteration 0 kept; push further in the same direction.", 0.1, parent=0)
    third = params_proposal(spec, "Borrow the search branch's recipe and deepen the grasp.", 0.3, parent=0)
    third["borrowed_from"] = "search-1"
    script = [tool_call(first, usage(1500, 120, cache_creation=900)),
              tool_call(second, usage(1650, 110, cache_read=900), text="Iteration 0 worked; continuing."),
              tool_call(third, usage(1700, 130, cache_read=900))]
    with FakeMessagesAPI(script) as api:
        agent = make(spec, api)
        r1 = agent.propose(research_state(spec))
        it0 = summary(spec, 0, r1.proposal, 0.5, failures=({"outcome": "fail", "reason": "handle slipped",
                                                           "final_state": {"drawer_opening": 0.04}},))
        agent.observe(it0)
        other = summary(spec, 1, params_proposal(spec, "search recipe", 0.9), 0.75, agent="search-1",
                        branch="search-1")
        r2 = agent.propose(research_state(spec, iterations=(it0, other), used={"tokens": r1.tokens},
                                          branch_best={"claude-0": it0, "search-1": other}))
        r3 = agent.propose(research_state(spec, iterations=(it0, other), used={"tokens": r1.tokens + r2.tokens}))
    assert [r.proposal for r in (r1, r2, r3)] == [first, second, third]
    assert all(r.error is None for r in (r1, r2, r3))
    # exact accounting: input + cache creation + cache read, and output, per reply and in total
    assert (r1.tokens_in, r1.tokens_out) == (2400, 120)
    assert (r2.tokens_in, r2.tokens_out) == (2550, 110)
    assert r1.tokens + r2.tokens + r3.tokens == api.tokens_returned == agent.tokens_in + agent.tokens_out
    assert agent.calls == 3
    bodies = api.message_requests()
    # the tool is the session's proposal schema; the call is forced to it; config reaches the request
    tool = bodies[0]["tools"][0]
    assert tool["name"] == TOOL_NAME
    assert tool["input_schema"]["properties"] == proposal_schema(spec.policy)["properties"]
    # with the investigation tools (the default) any tool may be called; the proposal's tool comes first
    assert bodies[0]["tool_choice"]["type"] == "any" and [t["name"] for t in bodies[0]["tools"]] == \
        [TOOL_NAME, "list_trials", "read_trial", "trial_frames", "read_candidate"]
    assert bodies[0]["model"] == spec.agent.get("model") and bodies[0]["max_tokens"] == spec.agent.get("max_tokens")
    assert "temperature" not in bodies[0]  # null in config: the API default
    # the second context carries the first result, its failure details, and the other branch's best
    context = bodies[1]["messages"][0]["content"]
    assert "handle slipped" in context and "drawer_opening" in context
    assert '"search-1"' in context and "search recipe" in context
    assert "iteration 0: keep, success_rate 0.500" in context  # observe() feedback
    remaining = spec.budget.tokens - r1.tokens
    assert f'"remaining": {remaining}' in context.replace(f"{remaining}.0", f"{remaining}")


def test_invalid_tool_input_is_answered_with_the_error_and_corrected(spec: ExperimentSpec) -> None:
    name = spec.policy.params[0].name
    bad = {"hypothesis": "Way out of range.", "parent": None, "candidate": {"kind": "params", "params": {name: 99.0}}}
    good = params_proposal(spec, "Back within the range, near the top.", 0.9)
    with FakeMessagesAPI([tool_call(bad, usage(1400, 80)), tool_call(good, usage(1600, 85))]) as api:
        reply = make(spec, api).propose(research_state(spec))
    assert reply.proposal == good and reply.error is None
    assert (reply.tokens_in, reply.tokens_out) == (3000, 165)  # the failed turn counts
    correction = api.message_requests()[1]["messages"]
    assert [m["role"] for m in correction] == ["user", "assistant", "user"]
    result = correction[2]["content"][0]
    assert result["type"] == "tool_result" and result["is_error"] is True
    assert result["tool_use_id"] == correction[1]["content"][0]["id"]
    assert f"proposal.candidate.params.{name}" in result["content"] and "99.0" in result["content"]


def test_proposal_that_asks_to_change_done_criteria_is_refused_and_rejected(spec: ExperimentSpec) -> None:
    """The tool has no field for done, safety or budget; insisting ends in a proposal the loop rejects."""
    tool_props = proposal_schema(spec.policy)["properties"]
    assert not {"done", "safety", "budget", "envelope", "verifier"} & set(tool_props)
    greedy = {**params_proposal(spec, "Success is easier if the drawer only has to open 1 cm.", 0.5),
              "done": {"predicate": {"conditions": [{"quantity": "drawer_opening", "op": ">=", "value": 0.01}]}},
              "budget": {"robot_seconds": 1e9}}
    script = [tool_call(greedy, usage(1400, 150)) for _ in range(3)]
    with FakeMessagesAPI(script) as api:
        agent = make(spec, api, max_corrections=2)
        reply = agent.propose(research_state(spec))
    assert len(api.message_requests()) == 3  # first try + 2 corrections
    refusal = api.message_requests()[1]["messages"][2]["content"][0]["content"]
    assert "proposal.done: not a field" in refusal and "proposal.budget: not a field" in refusal
    assert reply.proposal == greedy and reply.tokens == 3 * 1550
    problems = proposal_problems(reply.proposal, proposal_schema(spec.policy))  # what the loop runs
    assert problems and {p.path for p in problems} <= {"proposal.done", "proposal.budget"}
    assert proposal_problems({k: v for k, v in greedy.items() if k not in ("done", "budget")},
                             proposal_schema(spec.policy)) == []  # only the reach for done/budget is refused
    assert agent._failures  # counts toward max_consecutive_failures


def test_answer_without_tool_call_gets_one_nudge_then_an_error_reply(spec: ExperimentSpec) -> None:
    good = params_proposal(spec, "After the nudge: a mid-range approach height.", 0.5)
    script = [text_answer("I think we should lower the approach.", usage(1300, 30)), tool_call(good, usage(1350, 90)),
              text_answer("Let me think.", usage(1300, 20)), text_answer("Still thinking.", usage(1340, 25))]
    with FakeMessagesAPI(script) as api:
        agent = make(spec, api)
        ok = agent.propose(research_state(spec))
        gave_up = agent.propose(research_state(spec))
    assert ok.proposal == good and ok.tokens == 1300 + 30 + 1350 + 90
    assert "propose_experiment" in api.message_requests()[1]["messages"][2]["content"]  # the nudge
    assert gave_up.proposal is None and "no tool call" in gave_up.error
    assert gave_up.tokens == 1300 + 20 + 1340 + 25 and len(api.requests) == 4


def test_no_call_starts_once_the_token_budget_is_spent(spec: ExperimentSpec) -> None:
    bad = {"hypothesis": "Out of range again.", "candidate": {"kind": "params",
                                                              "params": {spec.policy.params[0].name: 99.0}}}
    with FakeMessagesAPI([tool_call(bad, usage(1400, 80))]) as api:
        agent = make(spec, api)
        with pytest.raises(TokenBudgetSpent, match="token budget spent"):
            agent.propose(research_state(spec, used={"tokens": spec.budget.tokens}))
        assert api.requests == []
        # 1000 tokens left: the first call spends 1480, so no correction call starts
        reply = agent.propose(research_state(spec, used={"tokens": spec.budget.tokens - 1000}))
    assert len(api.requests) == 1 and reply.tokens == 1480 and reply.proposal == bad


def test_base_url_from_environment_and_temperature_from_config(spec: ExperimentSpec,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    good = params_proposal(spec, "Any valid proposal will do here.", 0.4)
    with FakeMessagesAPI([tool_call(good)]) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        agent = make(spec, api, base_url=None, temperature=0.3)
        assert agent.propose(research_state(spec)).proposal == good
    assert api.message_requests()[0]["temperature"] == 0.3
