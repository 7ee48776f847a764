"""The judge's rules, on their own: pooling leaves out trials without evidence, /done is the first candidate whose
window reaches the rate, and an iteration is judged against the nearest ancestor with a different candidate."""

from __future__ import annotations

from enpire.judge.decision import decide, reference
from enpire.judge.pools import Pools
from enpire.records import Evaluation, TrialRecord


def _record(k: int, outcome: str) -> TrialRecord:
    ok = outcome == "success"
    return TrialRecord(trial_id=f"i0-t{k:03d}", iteration=0, station=0, seed=k, outcome=outcome,  # type: ignore[arg-type]
                       attempts=1, success_attempt=1 if ok else None, pass_at_1=ok, pass_at_k=ok, robot_seconds=1.0,
                       wall_s=0.1, steps=1, clamps=0, reason="r")


def test_pools_leave_out_crashes_and_name_the_first_candidate_at_done() -> None:
    pools = Pools(window=3, min_success_rate=2 / 3)
    assert not pools.add("a", _record(0, "crash"))
    assert pools.pooled("a") == (0, 0)
    met = [pools.add("a", _record(k, o)) for k, o in enumerate(("success", "failure", "success"), 1)]
    assert met == [False, False, True] and pools.done_key == "a"
    assert [pools.add("b", _record(k, "success")) for k in range(7, 10)] == [False] * 3  # /done is named once
    assert pools.done_key == "a"
    assert pools.window_rate("a") == 2 / 3


def test_reference_skips_ancestors_with_the_same_candidate() -> None:
    keys, parents = {0: "root", 1: "x", 2: "x"}, {0: None, 1: 0, 2: 1}
    assert reference(2, "x", keys, parents) == "root"
    assert reference(None, "x", keys, parents) is None


def test_all_crashed_trials_make_a_crash_and_a_stop_makes_a_cancelled() -> None:
    pools = Pools(window=10, min_success_rate=0.9)
    ev = Evaluation(index=0, agent="a", branch="b", parent=None, hypothesis="h", candidate={}, key="c",
                    trials_wanted=2, records=[_record(0, "crash"), _record(1, "crash")])
    assert decide(ev, pools, None)[0] == "crash"
    assert decide(ev, pools, None, cancelled=True)[0] == "cancelled"
