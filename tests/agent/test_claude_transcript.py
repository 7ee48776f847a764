"""What the Claude agent keeps of each call (transcript), how it counts tokens it is billed, and what it carries."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from enpire.agent.claude_client import MAX_TOKENS_PER_CALL
from enpire.agent.claude_evidence import tools_prompt
from enpire.agent.claude_prompt import SYSTEM_PROMPT, TEXT_LIMIT
from enpire.spec import ExperimentSpec
from tests.agent.fake_anthropic import FakeMessagesAPI, research_state, text_answer, tool_call, usage
from tests.agent.test_claude_agent import make, params_proposal, summary


def strict_json(value: Any) -> Any:
    return json.loads(json.dumps(value, allow_nan=False))


def test_transcript_holds_request_text_tool_input_and_billed_usage(spec: ExperimentSpec) -> None:
    name = spec.policy.params[0].name
    bad = {"hypothesis": "Far out of range, to see what happens.", "parent": None,
           "candidate": {"kind": "params", "params": {name: 99.0}}}
    good = params_proposal(spec, "Back within range, near the top.", 0.9)
    script = [tool_call(bad, usage(1400, 80, cache_creation=700), text="My reasoning: push hard on " + name),
              tool_call(good, usage(1600, 85, cache_read=700), text="Corrected: within the range now.")]
    with FakeMessagesAPI(script) as api:
        reply = make(spec, api).propose(research_state(spec))
    assert reply.proposal == good
    t = strict_json(reply.transcript)  # plain, strict JSON (no NaN, no objects)
    assert t == reply.transcript and len(t) == 2
    sent = api.message_requests()
    first, second = t
    assert first["request"]["system"] == [SYSTEM_PROMPT, tools_prompt(4)]
    assert first["request"]["model"] == sent[0]["model"]
    assert first["request"]["messages"] == sent[0]["messages"]  # the whole context of the first call
    assert first["request"]["tools"] == sent[0]["tools"] and first["request"]["tool_choice"] == sent[0]["tool_choice"]
    assert first["text"] == "My reasoning: push hard on " + name
    assert first["tool_input"] == bad and first["stop_reason"] == "tool_use"
    assert [b["type"] for b in first["response"]["content"]] == ["text", "tool_use"]
    # later calls record only what they added to the conversation, and where it starts
    assert second["request"]["messages_before"] == 1
    assert sent[1]["messages"] == sent[0]["messages"] + second["request"]["messages"]
    assert second["request"]["messages"][1]["content"][0]["is_error"] is True
    assert second["text"] == "Corrected: within the range now." and second["tool_input"] == good
    # token counts per call are what the API billed, and they add up to the reply's
    assert first["usage"]["input_tokens"] == 1400 and first["usage"]["cache_creation_input_tokens"] == 700
    assert (first["usage"]["tokens_in"], first["usage"]["tokens_out"]) == (2100, 80)
    assert (second["usage"]["tokens_in"], second["usage"]["tokens_out"]) == (2300, 85)
    assert first["usage"]["problems"] == [] and first["usage"]["estimated"] == []
    assert sum(e["usage"]["tokens_in"] + e["usage"]["tokens_out"] for e in t) == reply.tokens == api.tokens_returned


def test_a_failed_call_is_in_the_transcript_with_what_was_sent(spec: ExperimentSpec) -> None:
    with FakeMessagesAPI([]) as api:  # the stand-in answers 400: script exhausted
        reply = make(spec, api, max_retries=0).propose(research_state(spec))
    assert reply.proposal is None and reply.error.startswith("status")
    [entry] = strict_json(reply.transcript)
    assert entry["kind"] == "status" and "400" in entry["error"]
    assert entry["request"]["messages"] == api.message_requests()[0]["messages"]


def test_transcript_strings_are_bounded(spec: ExperimentSpec) -> None:
    good = params_proposal(spec, "A proposal after a very long musing.", 0.5)
    with FakeMessagesAPI([tool_call(good, text="ponder " * 100_000)]) as api:
        reply = make(spec, api).propose(research_state(spec))
    text = reply.transcript[0]["text"]
    assert len(text) < 210_000 and "characters truncated" in text
    assert len(json.dumps(reply.transcript)) < 700_000


BAD_USAGE = {
    "negative": {"input_tokens": -5000, "output_tokens": 90},
    "null": None,
    "missing": "missing",
    "huge": {"input_tokens": 1e30, "output_tokens": 90},
    "fields_null": {"input_tokens": None, "output_tokens": None},
    "string": {"input_tokens": "1200", "output_tokens": 90},
    "fraction": {"input_tokens": 1200.5, "output_tokens": 90},
    "bool": {"input_tokens": True, "output_tokens": 90},
    "negative_cache": {"input_tokens": 1200, "output_tokens": 90, "cache_read_input_tokens": -10**12},
    "not_a_block": 7,
}


@pytest.mark.parametrize("case", list(BAD_USAGE))
def test_implausible_usage_never_crashes_and_is_counted_sanely(spec: ExperimentSpec, case: str,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    good = params_proposal(spec, "A plain proposal; the billing is odd.", 0.5)
    step = tool_call(good)
    if BAD_USAGE[case] == "missing":
        del step.body["usage"]
    else:
        step.body["usage"] = BAD_USAGE[case]
    with FakeMessagesAPI([step, tool_call(good, usage(1000, 50))]) as api, \
            caplog.at_level(logging.WARNING, logger="enpire.agent.claude"):
        agent = make(spec, api)
        odd = agent.propose(research_state(spec))
        normal = agent.propose(research_state(spec, used={"tokens": odd.tokens}))
    assert odd.proposal == good and odd.error is None and normal.tokens == 1050
    assert isinstance(odd.tokens_in, int) and isinstance(odd.tokens_out, int)
    assert 0 < odd.tokens_in <= MAX_TOKENS_PER_CALL and 0 < odd.tokens_out <= MAX_TOKENS_PER_CALL
    sent = api.message_requests()[0]
    estimate_in = len(json.dumps([sent["system"], sent["tools"], sent["messages"]])) // 4
    entry = odd.transcript[0]
    if "input_tokens" in entry["usage"]["estimated"]:  # characters / 4 of what was sent
        assert 0.5 * estimate_in < odd.tokens_in < 2 * estimate_in
    assert entry["usage"]["problems"] and "implausible usage" in caplog.text
    if case in ("negative", "huge", "string", "fraction", "bool"):
        assert entry["usage"]["estimated"] == ["input_tokens"] and odd.tokens_out == 90  # the valid count is exact
    if case == "negative_cache":
        assert (odd.tokens_in, odd.tokens_out) == (1200, 90) and entry["usage"]["estimated"] == []
    assert agent.tokens_in + agent.tokens_out == odd.tokens + normal.tokens
    strict_json(odd.transcript)


def test_a_10mb_hypothesis_is_bounded_in_the_correction_and_every_later_prompt(spec: ExperimentSpec) -> None:
    huge = "H" * 10_000_000
    bad = {**params_proposal(spec, "x", 0.5), "hypothesis": huge}
    good = params_proposal(spec, "A short hypothesis this time.", 0.5)
    script = [tool_call(bad, usage(1500, 90)), tool_call(bad, usage(1500, 90)), tool_call(bad, usage(1500, 90)),
              tool_call(good, usage(1500, 90))]
    with FakeMessagesAPI(script) as api:
        agent = make(spec, api, max_corrections=2)
        rejected = agent.propose(research_state(spec))
        assert rejected.proposal == bad  # the loop validates (and rejects) what the model really sent
        # the loop records the rejected iteration; its hypothesis and reason are carried on
        it0 = summary(spec, 0, bad, 0.0, decision="rejected", reason=f"proposal.hypothesis: got {huge}")
        agent.observe(it0)
        later = agent.propose(research_state(spec, iterations=(it0,), used={"tokens": rejected.tokens}))
    assert later.proposal == good
    bodies = api.message_requests()
    sizes = [len(json.dumps(b)) for b in bodies]
    assert max(sizes) < 60_000, sizes  # not 10 MB, in no request
    correction = bodies[1]["messages"]
    echoed = correction[1]["content"][0]["input"]["hypothesis"]
    assert len(echoed) < TEXT_LIMIT + 100 and "characters truncated" in echoed
    assert len(correction[2]["content"][0]["content"]) < 2000
    context = bodies[3]["messages"][0]["content"]
    assert "characters truncated" in context and huge[:TEXT_LIMIT + 1] not in context
    assert len(json.dumps(rejected.transcript)) < 1_000_000


def test_answer_cut_off_at_max_tokens_is_told_so(spec: ExperimentSpec) -> None:
    good = params_proposal(spec, "Shorter this time.", 0.5)
    cut = text_answer("I will now write a very long", usage(1200, 2048))
    cut.body["stop_reason"] = "max_tokens"
    with FakeMessagesAPI([cut, tool_call(good)]) as api:
        assert make(spec, api).propose(research_state(spec)).proposal == good
    assert "cut off at max_tokens" in api.message_requests()[1]["messages"][2]["content"]


def test_a_flood_of_unknown_fields_is_bounded_in_the_correction(spec: ExperimentSpec) -> None:
    flood = {**params_proposal(spec, "Many extra fields.", 0.5), **{f"k{i}_" + "x" * 500: i for i in range(5000)}}
    good = params_proposal(spec, "Only the fields of a proposal.", 0.5)
    with FakeMessagesAPI([tool_call(flood), tool_call(good)]) as api:
        assert make(spec, api).propose(research_state(spec)).proposal == good
    correction = api.message_requests()[1]
    assert len(json.dumps(correction)) < 150_000
    assert len(correction["messages"][1]["content"][0]["input"]) <= 100
