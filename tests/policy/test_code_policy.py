"""Code policies on a real drawer station: the shipped example works, failures become `crash` records with
the traceback, and NaN or huge commands are caught by the station's envelope, not by the sandbox."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from enpire.fleet.stations import make_station
from enpire.policy.code import code_candidate, code_candidate_from_spec
from enpire.policy.factory import make_policy
from enpire.records import TrialRequest
from enpire.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "policies" / "drawer_policy.py"


def code_spec(source: Path | None = None):
    return load_spec(["task=drawer", "policy=code", *( [f"policy.source={source}"] if source else [])])


def run(source: str, seed: int = 5004, spec=None):
    spec = spec or code_spec()
    candidate = code_candidate(source)
    station = make_station(spec, 0)
    policy = make_policy(spec, candidate)
    try:
        return station.run_trial(TrialRequest("t", 0, seed, candidate), policy=policy)
    finally:
        policy.close()
        station.close()


def body(act: str) -> str:
    return f"class Policy:\n    def reset(self, obs, feedback=None):\n        pass\n\n    def act(self, obs):\n{act}\n"


def test_example_drawer_policy_opens_the_drawer() -> None:
    spec = code_spec(EXAMPLE)
    candidate = code_candidate_from_spec(spec)
    assert candidate is not None and candidate.kind == "code" and "make_policy" in candidate.source
    station = make_station(spec, 0)
    policy = make_policy(spec, candidate)
    try:
        records = [station.run_trial(TrialRequest(f"t{s}", 0, s, candidate), policy=policy) for s in (5004, 5006)]
    finally:
        policy.close()
        station.close()
    assert all(r.pass_at_k for r in records), [(r.outcome, r.reason, r.error) for r in records]
    assert policy.protections.get("clean_env")


def test_exception_in_policy_is_a_crash_with_traceback() -> None:
    rec = run(body("        raise ZeroDivisionError('my bug on line 7')"))
    assert rec.outcome == "crash"
    assert "ZeroDivisionError" in rec.error and "my bug on line 7" in rec.error


def test_syntax_error_is_a_crash_the_agent_can_read() -> None:
    rec = run("def make_policy(:\n    pass\n")
    assert rec.outcome == "crash" and "SyntaxError" in rec.error


def test_timeout_is_a_crash() -> None:
    spec = load_spec(["task=drawer", "policy=code", "policy.sandbox.step_timeout_s=0.2"])
    rec = run(body("        while True:\n            pass"), spec=spec)
    assert rec.outcome == "crash" and "deadline" in rec.error


def test_wrong_shape_is_a_crash_with_a_clear_message() -> None:
    rec = run(body("        return [0.1, 0.2]"))
    assert rec.outcome == "crash" and "expected 5 numbers" in rec.error


@pytest.mark.parametrize("value", ["float('nan')", "1e300"])
def test_non_finite_or_huge_commands_meet_the_envelope(value: str) -> None:
    rec = run(body(f"        return [{value}, 0.0, 0.3, 0.0, 0.0]"))
    assert rec.outcome != "success"
    caught = rec.outcome == "unsafe" or rec.clamps > 0
    assert caught, (rec.outcome, rec.clamps, rec.reason, rec.safety_events)
    assert all(np.isfinite(v) for v in rec.final_state.values() if v is not None)
