"""Confirmed success: every success rate shown with its trial count and a 95% lower confidence bound.

A rate of 1.0 after one lucky trial and a rate of 0.96 over 50 trials are different claims; the
Wilson score interval says by how much (1/1 -> lower bound 0.21, 48/50 -> 0.87). The summary, the
MLflow metrics, the report's tables and curves, and the live display all show the bound (or the
counts) beside the rate, and the "best" candidate is the one with the highest lower bound among
those with at least MIN_TRIALS pooled trials: never a 1/1.

Wilson rather than the normal approximation because it stays inside [0, 1] and is honest at
0/n and n/n, where screening spends most of its trials.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from enpire.agent.ranking import Ranking
from enpire.judge.keep import KEEP_MIN_TRIALS

Z95 = 1.959963984540054  # two-sided 95% (each bound is a one-sided 97.5% bound)
MIN_TRIALS = KEEP_MIN_TRIALS  # a candidate counts as "best" only with this much evidence, like a keep


def wilson(successes: float, trials: float, z: float = Z95) -> tuple[float, float]:
    """(low, high) Wilson score interval of a binomial rate; (0, 1) with no trials."""
    n = float(trials)
    if n <= 0:
        return 0.0, 1.0
    p = min(1.0, max(0.0, float(successes) / n))
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    lo = 0.0 if p <= 0.0 else max(0.0, min(p, (centre - spread) / scale))  # exact at 0/n and n/n (no 1e-17)
    hi = 1.0 if p >= 1.0 else min(1.0, max(p, (centre + spread) / scale))
    return lo, hi


def lower_bound(successes: float, trials: float) -> float:
    return wilson(successes, trials)[0]


def counts(rate: float, trials: float) -> int:
    """Successes behind a rate over `trials` (rates are logged as fractions; counts are whole)."""
    return round(rate * trials)


@dataclass(frozen=True)
class Confirmed:
    """A candidate's pooled result: successes over trials, the rate and its 95% Wilson interval."""

    key: str
    successes: int
    trials: int

    @property
    def rate(self) -> float:
        return self.successes / self.trials if self.trials else 0.0

    @property
    def lcb(self) -> float:
        return lower_bound(self.successes, self.trials)

    @property
    def ucb(self) -> float:
        return wilson(self.successes, self.trials)[1]

    def text(self) -> str:
        """`0.96 (48/50, 95% CI 0.87-0.99)`: how every rate is written for people."""
        return describe(self.successes, self.trials)


def describe(successes: float, trials: float) -> str:
    if trials <= 0:
        return "no trials"
    lo, hi = wilson(successes, trials)
    return f"{successes / trials:.2f} ({successes:.0f}/{trials:.0f}, 95% CI {lo:.2f}-{hi:.2f})"


def _rank(c: Confirmed) -> tuple[float, int, str]:
    """The order of the confirmed best: lower bound, then trials, then the key (every run names the same one)."""
    return (round(c.lcb, 12), c.trials, c.key)


def _better(a: Confirmed, b: Confirmed | None) -> bool:
    return b is None or _rank(a) > _rank(b)


def confirmed_best(pools: Mapping[str, Sequence[bool]], min_trials: int = MIN_TRIALS) -> Confirmed | None:
    """The candidate with the highest lower bound among those with at least `min_trials` pooled trials
    (ties: more trials, then the key, so every run of a seed names the same one); None before any has."""
    best: Confirmed | None = None
    for key, pool in pools.items():
        if len(pool) < min_trials:
            continue
        cand = Confirmed(key, int(sum(bool(x) for x in pool)), len(pool))
        if _better(cand, best):
            best = cand
    return best


def best_of(results: Iterable[Confirmed], min_trials: int = MIN_TRIALS) -> Confirmed | None:
    best: Confirmed | None = None
    for cand in results:
        if cand.trials >= min_trials and _better(cand, best):
            best = cand
    return best


class BestTracker:
    """confirmed_best kept up to date as pools grow: each grown candidate is ranked once (enpire.agent.ranking:
    a heap with lazy deletion), so a long session does not re-rank every candidate after every iteration.
    Same answer as confirmed_best(pools) (tests/track/test_confidence.py)."""

    def __init__(self, min_trials: int = MIN_TRIALS) -> None:
        self.min_trials = min_trials
        self._current: dict[str, Confirmed] = {}
        self._ranking = Ranking()

    def update(self, pools: Mapping[str, Sequence[bool]], grown: Iterable[str]) -> Confirmed | None:
        for key in grown:
            pool = pools.get(key, ())
            if len(pool) >= self.min_trials:
                cand = self._current[key] = Confirmed(key, int(sum(bool(x) for x in pool)), len(pool))
                self._ranking.note(key, _rank(cand), 0)  # keys are unique: the rank decides every tie
        best = self._ranking.best()
        return self._current[best] if best is not None else None


def best_metrics(pools: Mapping[str, Sequence[bool]], best: Confirmed | bool | None = False) -> dict[str, float]:
    """The confirmed best as session metrics (the loop logs them after every iteration, as the summary does);
    `best` when the caller already knows it (a BestTracker), else it is found from `pools`."""
    best = confirmed_best(pools) if best is False else best
    if best is None:
        return {"best_success_rate": 0.0, "best_success_lcb": 0.0, "best_success_trials": 0.0}
    return {"best_success_rate": best.rate, "best_success_lcb": best.lcb, "best_success_trials": float(best.trials)}
