"""The keep_rule bench's bookkeeping: null children are rarely kept, large known gains usually are, and the
decisions come from the judge's own rule (enpire.judge, through the idea tree; no station here: synthetic
records of known rates)."""

from __future__ import annotations

from enpire.bench.keep_rule import Outcomes, simulate
from enpire.judge import decision as decision_mod
from enpire.records import TrialRecord


def _outcomes(name: str, successes: int, n: int) -> Outcomes:
    records = [TrialRecord(trial_id=f"i0000-t{k:03d}", iteration=0, station=0, seed=k,
                           outcome="success" if k < successes else "failure", attempts=1,
                           success_attempt=1 if k < successes else None, pass_at_1=k < successes,
                           pass_at_k=k < successes, robot_seconds=3.0, wall_s=0.1, steps=10, clamps=0)
               for k in range(n)]
    return Outcomes(name, records, records[:successes], records[successes:])


def test_null_children_are_rarely_kept_and_big_gains_are_found() -> None:
    before = decision_mod.keep_verdict
    out = simulate("drawer", {"defaults": _outcomes("defaults", 20, 40),
                              "defaults twin": _outcomes("defaults twin", 20, 40)}, replications=60)
    assert decision_mod.keep_verdict is before  # the memoised rule is put back
    assert 0.0 <= out["drawer_false_keep_lo"] <= out["drawer_false_keep"] <= out["drawer_false_keep_hi"] <= 1.0
    assert out["drawer_false_keep"] <= 0.05  # p = 0.5 against itself: kept rarely (the bench's goal)
    assert out["drawer_false_keep_one_decision_of_n0"] <= 0.15
    # +0.3 over 0.5 with a 50-trial reference and 50 trials of its own: usually kept (one decision)
    assert out["drawer_false_discard_gain0.3_n0=50_one_decision"] <= 0.5
    assert out["drawer_false_keep_per_decision"] <= 0.05  # the rule's split error rate holds per look
    assert out["drawer.defaults.rate"] == 0.5 and out["drawer_goal_met"] in (0.0, 1.0)
