"""The keep rule (enpire.judge.keep) on real sessions: no keep on one lucky trial, none without own successes."""

from __future__ import annotations

from pathlib import Path

from enpire.judge.keep import KEEP_ALPHA, keep_verdict, prob_better
from tests.fleet.support import ScriptedAgent, migrated_store, params_proposal, run, spec_of, store

__all__ = ["migrated_store", "store"]


def test_a_first_iteration_is_not_kept_on_one_lucky_trial(store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=2", "budget.robot_seconds=1000",
                   "determinism=fast")  # fast: the scripted parent chain names the iteration just closed
    good = params_proposal(spec, trials=1, pull_distance=0.2)  # succeeds on this seed (drawer opens 0.2 m)
    again = {**good, "parent": 0, "trials": 4}
    agent = ScriptedAgent([good, again])
    code, _, _ = run(spec, tmp_path, agents=[agent])
    assert code == 0
    first, second = [it for it in agent.observed if it.decision != "cancelled"]
    assert first.success_rate == 1.0 and first.trials == 1
    assert first.decision == "discard" and "fewer than" in first.reason
    assert second.candidate_trials == 5 and second.candidate_success_rate > 0.5
    assert second.decision == "keep"  # the same candidate with enough evidence of its own


def test_an_iteration_with_no_success_of_its_own_is_never_kept(store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=2", "budget.robot_seconds=1000",
                   "determinism=fast")  # fast: the scripted parent chain names the iteration just closed
    good = params_proposal(spec, trials=4, pull_distance=0.2)
    failing = {**good, "parent": 0, "trials": 2, "candidate": {"kind": "params", "params": {
        **good["candidate"]["params"], "pull_distance": 0.08}}}  # pulls 0.08 m: the drawer never opens 0.15 m
    agent = ScriptedAgent([good, failing])
    code, _, _ = run(spec, tmp_path, agents=[agent])
    assert code == 0
    assert agent.observed[0].decision == "keep"
    assert agent.observed[1].success_rate == 0.0 and agent.observed[1].decision == "discard"
    assert "no success of its own" in agent.observed[1].reason


def test_pooled_evidence_of_a_reevaluation_that_failed_does_not_keep_it() -> None:
    """A push_t iteration was once kept although its own 3 trials all failed (pooled 1/4)."""
    assert keep_verdict(0, 1, 4, None) == (False, "no success of its own (pooled 1/4)")
    assert keep_verdict(0, 40, 50, (0, 50))[0] is False


def test_the_posterior_test_holds_its_stated_error_rate_for_equal_candidates() -> None:
    """Null candidates (true rate equal to the reference's): keeps happen at most about KEEP_ALPHA of the time."""
    import numpy as np

    rng = np.random.default_rng(0)
    keeps = 0
    cases = 400
    for _ in range(cases):
        p = rng.uniform(0.2, 0.8)
        s0, s1 = rng.binomial(8, p), rng.binomial(8, p)
        keeps += keep_verdict(max(1, s1), s1, 8, (s0, 8))[0] and s1 > 0
    assert keeps / cases <= KEEP_ALPHA + 0.02
    assert prob_better(8, 8, 0, 8) > 0.99 and prob_better(4, 8, 4, 8) == __import__("pytest").approx(0.5, abs=0.01)
