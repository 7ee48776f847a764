"""Sequential, noise-aware screening: how many more trials a candidate deserves, if any.

/done needs `done.window` consecutive trials of ONE candidate at `done.min_success_rate`, so a
candidate is only worth trials while it can still plausibly be that candidate. After every
evaluation the posterior of its success probability p (Beta(1 + s, 1 + f), a uniform prior) says
how plausible `p >= goal` is. The prior itself puts `1 - goal` on it (0.05 for a 0.95 goal):

- plausibility below the prior (`drop`, default the prior's own mass): the evidence is against it,
  stop spending trials (one failure in one trial already does that: 0.0025 vs 0.05);
- otherwise it gets the next chunk of a geometric schedule (1 -> 4 -> 16 -> window trials): a
  failure stops a bad candidate after a few trials, a good one reaches the /done window with
  few agent round-trips (each round-trip lets other work onto the stations).

Pure functions, so the same rule serves the search agent and both baselines (a fair benchmark).
"""

from __future__ import annotations

from functools import lru_cache

DEFAULT_SCHEDULE = (1, 4, 16)


def prob_at_least(successes: float, trials: float, goal: float) -> float:
    """P(p >= goal) under the Beta(1 + s, 1 + f) posterior of a candidate's success probability.

    The regularized upper incomplete beta function, exact and stable for any number of trials
    (a binomial sum overflows floats past ~1000 trials). Memoised on the rounded counts: an agent asks
    this of every candidate it knows at every proposal, and most share a few small (s, n) pairs.
    """
    if not 0.0 < goal < 1.0:
        raise ValueError(f"goal: {goal!r}, expected a success rate strictly between 0 and 1")
    n = max(0, round(trials))
    return _tail(min(n, max(0, round(successes))), n, float(goal))


@lru_cache(maxsize=65536)
def _tail(s: int, n: int, goal: float) -> float:
    from scipy.special import betaincc

    return float(betaincc(s + 1, n - s + 1, goal))


def plausible(successes: float, trials: float, goal: float, drop: float | None = None) -> bool:
    """Is it still worth trials: is `p >= goal` at least as plausible as before any evidence?"""
    floor = (1.0 - goal) if drop is None else drop
    return prob_at_least(successes, trials, goal) >= floor - 1e-12


def next_chunk(trials: int, window: int, schedule: tuple[int, ...] = DEFAULT_SCHEDULE, cap: int = 16) -> int:
    """Trials to ask next for a candidate with `trials` so far: up to the next cumulative target.

    Targets are `schedule` then `window`; past the window (its last trials fell short) `cap` more at
    a time, so /done's sliding window can still fill with a run of successes.
    """
    for target in (*schedule, window):
        if trials < target:
            return target - trials
    return cap
