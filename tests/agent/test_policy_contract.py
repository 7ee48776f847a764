"""The code-policy contract is generated from the sandbox, the station and the spec, not copied by hand."""

from __future__ import annotations

import logging

import pytest

from enpire.fleet.stations import make_station
from enpire.policy.code import action_size, sandbox_limits
from enpire.policy.contract import contract_facts, entry_points, policy_contract, source_description
from enpire.spec import load_spec


@pytest.fixture(scope="module")
def code_spec():
    return load_spec(["policy=code", "agent=claude", "budget=smoke"])


def test_entry_points_are_read_from_the_sandbox_child(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="enpire.policy.contract"):
        assert entry_points() == (("make_policy", "Policy"), ("reset", "act"))
    assert not caplog.records  # read from sandbox_child._load_policy, not the fallback


def test_drawer_contract_names_the_interface_the_station_and_the_spec(code_spec) -> None:
    text = policy_contract(code_spec)
    assert "`make_policy()`" in text and "a class `Policy`" in text
    assert "`reset(obs, feedback=None)`" in text and "`act(obs)`" in text
    assert "`.attempt` (int), `.reason` (str), `.quantities` (dict[str, float])" in text
    station = make_station(code_spec, 0)
    station.reset(code_spec.seed)
    obs = station.observe()
    assert {"ee_pos", "joint_pos", "handle_pos", "drawer_yaw", "drawer_opening"} <= set(obs)
    for key, value in obs.items():  # every key, with the flattened shape the sandbox delivers
        assert f"- `{key}`: shape ({value.size},) float64" in text
    assert "def observe(self, physics" in text and "handle_centre" in text  # the task's own code
    assert f"exactly {action_size(code_spec)} finite numbers" in text and "`[x, y, z, yaw, grip]`" in text
    lo, hi = code_spec.safety.workspace.low, code_spec.safety.workspace.high
    assert f"x in [{lo[0]:g}, {hi[0]:g}], y in [{lo[1]:g}, {hi[1]:g}], z in [{lo[2]:g}, {hi[2]:g}]" in text
    assert f"within {sandbox_limits(code_spec).step_timeout_s:g} s" in text
    assert f"control period {code_spec.control_dt:g} s" in text and "(300 act() calls)" in text
    assert "the Python standard library and numpy only" in text
    assert "drawer_opening >= 0.15, held 0.5 s, with no safety stop" in text
    hint = source_description(code_spec)
    assert "Code-policy contract" in hint and "make_policy()" in hint and "[x, y, z, yaw, grip]" in hint


def test_contract_follows_the_session_spec_not_a_fixed_text() -> None:
    spec = load_spec(["policy=code", "task=reach", "robot=jaco", "safety.workspace.high=[0.6,0.3,0.45]",
                      "policy.sandbox.step_timeout_s=0.25"])
    facts = contract_facts(spec)
    assert "target_pos" in facts["observation"] and "handle_pos" not in facts["observation"]
    assert facts["workspace"]["high"] == [0.6, 0.3, 0.45]
    text = policy_contract(spec)
    lo = spec.safety.workspace.low
    assert f"x in [{lo[0]:g}, 0.6], y in [{lo[1]:g}, 0.3], z in [{lo[2]:g}, 0.45]" in text
    assert "high [0.6, 0.3, 0.45]" in text and "within 0.25 s" in text
    assert facts["controller_action_size"] == facts["action_size"] == 5
