"""The keep rule: is an iteration's candidate better than its reference, on its own evidence?

An iteration is `keep` when all of these hold:

1. its own trials have at least one verified success (pooled trials of earlier iterations of
   the same candidate never make an iteration with 0 successes of its own a keep);
2. its candidate has at least KEEP_MIN_TRIALS pooled trials (one lucky 1/1 is not evidence);
3. the one-sided posterior test says the candidate's success probability is above the
   reference's with probability at least `1 - KEEP_ALPHA / KEEP_LOOKS`: with Beta(1 + s, 1 + f)
   posteriors for both, P(p_candidate > p_reference) >= 0.983. A root (no reference) is judged
   against a reference that never succeeds (p = 0), so rules 1 and 2 decide it.

KEEP_ALPHA is the stated false-keep rate per candidate: under the null (a candidate no better than
its reference) it should be kept with probability at most KEEP_ALPHA over its whole life. A
candidate is judged again at every look its screening gives it (1 -> 4 -> 16 -> the /done window:
three looks with at least KEEP_MIN_TRIALS trials), so each look gets KEEP_ALPHA / KEEP_LOOKS
(Bonferroni). The keep_rule bench measures the rates that result: with one 0.05 test per look,
drawer's null candidates were kept 0.094 of the time (0.090-0.098); split over the looks, 0.007.
"""

from __future__ import annotations

import numpy as np

KEEP_ALPHA = 0.05
KEEP_LOOKS = 3  # judged looks of a screened candidate (4, 16, window trials)
KEEP_MIN_TRIALS = 3
_GRID = np.linspace(0.0, 1.0, 2001)


def prob_better(s1: float, n1: float, s0: float, n0: float) -> float:
    """P(p1 > p0) for independent Beta(1 + s, 1 + n - s) posteriors (numerical integration on a grid)."""
    from scipy.stats import beta

    a1, b1 = 1.0 + s1, 1.0 + max(0.0, n1 - s1)
    a0, b0 = 1.0 + s0, 1.0 + max(0.0, n0 - s0)
    density = beta.pdf(_GRID, a1, b1)
    below = beta.cdf(_GRID, a0, b0)
    return float(np.clip(np.trapezoid(density * below, _GRID), 0.0, 1.0))


def keep_verdict(own_successes: int, s: int, n: int, reference: tuple[int, int] | None) -> tuple[bool, str]:
    """(keep?, why) for a candidate with pooled s/n whose iteration had `own_successes`."""
    if own_successes <= 0:
        return False, f"no success of its own (pooled {s}/{n})"
    if n < KEEP_MIN_TRIALS:
        return False, f"pooled {s}/{n}: fewer than {KEEP_MIN_TRIALS} trials of evidence"
    if reference is None:
        return True, f"pooled {s}/{n}, {own_successes} own successes: the first working candidate of its line"
    s0, n0 = reference
    p, need = prob_better(s, n, s0, n0), 1.0 - KEEP_ALPHA / KEEP_LOOKS
    if p >= need:
        return True, f"pooled {s}/{n} beats the reference {s0}/{n0}: P(better) = {p:.3f} >= {need:.3f}"
    return False, f"pooled {s}/{n} vs the reference {s0}/{n0}: P(better) = {p:.3f} < {need:.3f}"
