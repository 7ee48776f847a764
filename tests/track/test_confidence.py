"""Confirmed success: Wilson bounds, and a best candidate that is never a lucky 1/1."""

from __future__ import annotations

import pytest

from enpire.track.confidence import MIN_TRIALS, Confirmed, best_of, confirmed_best, describe, lower_bound, wilson


def test_wilson_bounds_match_known_values_and_stay_in_the_unit_interval() -> None:
    assert wilson(1, 1)[0] == pytest.approx(0.2065, abs=1e-4)  # one lucky trial says little
    assert wilson(48, 50) == pytest.approx((0.8654, 0.9890), abs=1e-4)
    assert wilson(0, 10)[0] == pytest.approx(0.0, abs=1e-12) and wilson(10, 10)[1] == pytest.approx(1.0)
    assert wilson(0, 0) == (0.0, 1.0)
    for s, n in ((0, 3), (2, 7), (19, 20), (500, 1000)):
        lo, hi = wilson(s, n)
        assert 0.0 <= lo <= s / n <= hi <= 1.0


def test_the_best_candidate_is_the_highest_lower_bound_with_enough_trials() -> None:
    pools = {"lucky": [True], "three": [True, True, True], "solid": [True] * 47 + [False] * 3,
             "short": [True, True]}
    best = confirmed_best(pools)
    assert best is not None and best.key == "solid"  # 47/50 (lower bound 0.84) beats 3/3 (0.44) and 1/1
    assert best.trials == 50 and best.lcb == pytest.approx(lower_bound(47, 50))
    assert confirmed_best({"lucky": [True], "short": [True, False]}) is None  # never a 1/1 (nor a 2-trial pool)
    only = confirmed_best({"lucky": [True], "three": [True] * MIN_TRIALS})
    assert only is not None and only.key == "three" and only.rate == 1.0 and only.lcb < 0.5
    assert best_of([Confirmed("a", 1, 1), Confirmed("b", 2, 4)]) == Confirmed("b", 2, 4)


def test_rates_are_written_with_counts_and_interval() -> None:
    assert describe(48, 50) == "0.96 (48/50, 95% CI 0.87-0.99)"
    assert describe(0, 0) == "no trials"


def test_best_metrics_are_what_the_summary_reports() -> None:
    from enpire.track.confidence import best_metrics

    assert best_metrics({"lucky": [True]}) == {"best_success_rate": 0.0, "best_success_lcb": 0.0,
                                               "best_success_trials": 0.0}
    m = best_metrics({"a": [True, True, False, True]})
    assert m["best_success_rate"] == 0.75 and m["best_success_trials"] == 4.0
    assert m["best_success_lcb"] == pytest.approx(lower_bound(3, 4))


def test_the_incremental_best_is_the_best_of_all_pools_after_every_trial() -> None:
    """BestTracker ranks only the pools that grew; it names the same candidate as ranking them all."""
    import random

    from enpire.judge.pools import Pools
    from enpire.records import TrialRecord
    from enpire.track.confidence import BestTracker, confirmed_best

    rng = random.Random(7)
    pools, tracker = Pools(window=50, min_success_rate=2.0), BestTracker()  # a goal no run meets: pooling goes on
    rates = {f"c{i}": rng.random() for i in range(40)}
    for n in range(3000):
        key = rng.choice(list(rates)) if rng.random() < 0.7 else "c0"  # one candidate gets most trials
        ok = rng.random() < rates[key]
        pools.add(key, TrialRecord(trial_id=f"t{n}", iteration=0, station=0, seed=n, outcome="success" if ok
                                   else "failure", attempts=1, success_attempt=1 if ok else None, pass_at_1=ok,
                                   pass_at_k=ok, robot_seconds=1.0, wall_s=0.0, steps=1, clamps=0))
        if n % 7 == 0 or n > 2900:
            assert tracker.update(pools.results, pools.take_grown()) == confirmed_best(pools.results), n
