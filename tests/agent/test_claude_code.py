"""policy=code with the Claude agent: the contract, the parent's source and a crash's traceback reach the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from enpire.agent.claude_evidence import tools_prompt
from enpire.agent.claude_prompt import SYSTEM_PROMPT, TOOL_NAME
from enpire.agent.proposal import proposal_problems, proposal_schema
from enpire.policy.contract import policy_contract
from enpire.spec import ExperimentSpec, load_spec
from tests.agent.fake_anthropic import FakeMessagesAPI, research_state, tool_call, usage
from tests.agent.test_claude_agent import make, summary
from tests.agent.test_claude_prompt import blocks

EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "policies" / "drawer_policy.py").read_text()
TRACEBACK = ('Traceback (most recent call last):\n  File "/tmp/enpire-sbx-x/policy.py", line 12, in act\n'
             '    return [*self.target, self.yaw, grip]\nAttributeError: \'P\' object has no attribute \'target\'')


@pytest.fixture(scope="module")
def code_spec() -> ExperimentSpec:
    return load_spec(["agent=claude", "budget=smoke", "policy=code"])


def code(source: str, hypothesis: str, parent: int | None = None) -> dict:
    return {"hypothesis": hypothesis, "parent": parent, "candidate": {"kind": "code", "source": source}}


def test_code_prompt_holds_the_contract_and_the_tool_points_at_it(code_spec: ExperimentSpec) -> None:
    first = code(EXAMPLE, "Set-point approach, descend, close, pull along the slide axis.")
    with FakeMessagesAPI([tool_call(first, usage(5000, 1500))]) as api:
        reply = make(code_spec, api).propose(research_state(code_spec))
    assert reply.proposal == first and reply.error is None
    body = api.message_requests()[0]
    system = [b["text"] for b in body["system"]]
    assert system == [SYSTEM_PROMPT, policy_contract(code_spec), tools_prompt(4)]
    assert "cache_control" in body["system"][-1] and "cache_control" not in body["system"][0]
    contract = system[1]  # the last block is what the investigation tools are for
    for needle in ("make_policy()", "reset(obs, feedback=None)", "act(obs)", "[x, y, z, yaw, grip]",
                   "`handle_pos`: shape (3,) float64", "`drawer_opening`: shape (1,) float64",
                   "`joint_pos`: shape (6,) float64", "standard library and numpy only",
                   "x in [0.2, 0.72], y in [-0.35, 0.35], z in [0.005, 0.5]"):
        assert needle in contract, needle
    source_doc = body["tools"][0]["input_schema"]["properties"]["candidate"]["properties"]["source"]["description"]
    assert "Code-policy contract" in source_doc and "make_policy()" in source_doc and "numpy" in source_doc
    assert body["tools"][0]["name"] == TOOL_NAME
    context = body["messages"][0]["content"]
    assert "Code-policy contract" in context and "Policy kind: code" in context
    # the session's validation schema is untouched (only the tool's copy has the longer description)
    assert proposal_schema(code_spec.policy)["properties"]["candidate"]["properties"]["source"]["description"] == \
        "Python source implementing the policy API."


def test_parent_source_and_crash_traceback_reach_the_next_request(code_spec: ExperimentSpec) -> None:
    base = "import numpy as np\n\nclass P:\n    def reset(self, obs, feedback=None):\n        pass\n"
    parent_src = EXAMPLE
    crashed_src = base + "    def act(self, obs):\n        return [*self.target, 0.0, 0.0]\n\ndef make_policy():\n" \
                         "    return P()\n"
    it0 = summary(code_spec, 0, code(parent_src, "The worked example as a start."), 0.5, candidate_id="code-aaa")
    it1 = summary(code_spec, 1, code(crashed_src, "A leaner policy with a direct target.", parent=0), 0.0,
                  decision="crash", candidate_id="code-bbb", reason="all 8 trials crashed",
                  failures=({"outcome": "crash", "reason": "policy raised", "final_state": {}, "safety_events": [],
                             "error": TRACEBACK},))
    fixed = code(crashed_src.replace("self.target", "obs['handle_pos']"), "Fix the crash: target the handle.", 1)
    with FakeMessagesAPI([tool_call(fixed)]) as api:
        agent = make(code_spec, api)
        agent.observe(it0)
        agent.observe(it1)
        reply = agent.propose(research_state(code_spec, iterations=(it0, it1), branch_best={"claude-0": it0}))
    assert reply.proposal == fixed and proposal_problems(fixed, proposal_schema(code_spec.policy)) == []
    found = dict(blocks(api.message_requests()[0]["messages"][0]["content"]))
    shown = json.loads(found["code"])
    by_iteration = {e["iteration"]: e for e in shown}
    assert by_iteration[1]["source"] == crashed_src and by_iteration[1]["role"] == "your latest code candidate"
    assert by_iteration[0]["source"] == parent_src  # the parent of the latest, and the branch's best (once)
    assert len(shown) == 2
    assert by_iteration[1]["crash_tracebacks"] == [TRACEBACK]
    tree = json.loads(found["idea_tree"])
    assert "AttributeError" in tree[1]["failures"][0]["error"]
    # the idea tree names code by hash and size; the source itself appears once, in the code block
    assert tree[0]["candidate"]["source_chars"] == len(parent_src) and "source" not in tree[0]["candidate"]
    assert found["code"].count("def make_policy") == 2
