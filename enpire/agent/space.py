"""The policy's parameter space as agents and the loop see it: canonical params and unit coordinates.

Two proposals with the same canonical params are the same candidate: their trials pool across
iterations (re-evaluation). Canonical = every declared parameter present (missing ones filled
from the parent's or the default value), rounded to 6 decimals, in declaration order.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from enpire.spec.model import PolicySpec

DECIMALS = 6


def canonical_params(params: Mapping[str, float], policy: PolicySpec,
                     base: Mapping[str, float] | None = None) -> dict[str, float]:
    """All declared params, missing ones from `base` (the parent's) or the defaults, rounded."""
    fallback = dict(base) if base else policy.defaults()
    return {p.name: round(float(params.get(p.name, fallback.get(p.name, p.default))), DECIMALS)
            for p in policy.params}


def candidate_key(candidate: Mapping[str, Any]) -> str:
    """A stable id of a candidate dict ({"kind": ..., "params"|"source"|"recipe": ...})."""
    text = json.dumps(candidate, sort_keys=True, separators=(",", ":"), default=str)
    return "c" + hashlib.sha1(text.encode()).hexdigest()[:10]


def to_unit(params: Mapping[str, float], policy: PolicySpec) -> np.ndarray:
    """Params -> [0, 1]^d (log-scaled params in log space)."""
    out = []
    for p in policy.params:
        x = float(params.get(p.name, p.default))
        if p.scale == "log" and p.low > 0:
            out.append((math.log(x) - math.log(p.low)) / (math.log(p.high) - math.log(p.low)))
        else:
            out.append((x - p.low) / (p.high - p.low) if p.high > p.low else 0.5)
    return np.clip(np.asarray(out, dtype=np.float64), 0.0, 1.0)


def from_unit(u: np.ndarray, policy: PolicySpec) -> dict[str, float]:
    out = {}
    for x, p in zip(np.clip(u, 0.0, 1.0), policy.params):
        if p.scale == "log" and p.low > 0:
            value = math.exp(math.log(p.low) + float(x) * (math.log(p.high) - math.log(p.low)))
        else:
            value = p.low + float(x) * (p.high - p.low)
        out[p.name] = round(min(max(value, p.low), p.high), DECIMALS)
    return out


def smoothed_rate(successes: float, trials: float) -> float:
    """(s + 1) / (n + 2): a success-rate estimate that is never exactly 0 or 1 on few trials."""
    return (successes + 1.0) / (trials + 2.0)


def standard_error(successes: float, trials: float) -> float:
    p = smoothed_rate(successes, trials)
    return math.sqrt(p * (1.0 - p) / (trials + 2.0))


def beats(s1: float, n1: float, s0: float, n0: float, z: float) -> bool:
    """Is rate 1 better than rate 0 by more than z standard errors of the difference?"""
    if n1 <= 0:
        return False
    if n0 <= 0:  # against nothing: the raw rate must be above 0 by z standard errors
        return s1 > 0 and s1 / n1 > z * standard_error(s1, n1)
    diff = smoothed_rate(s1, n1) - smoothed_rate(s0, n0)
    se = math.sqrt(standard_error(s1, n1) ** 2 + standard_error(s0, n0) ** 2)
    return diff > z * se


def describe_change(new: Mapping[str, float], old: Mapping[str, float], policy: PolicySpec, top: int = 3) -> str:
    """'pull_distance 0.14->0.21 m, grip_close 0.6->0.8' for the largest relative changes."""
    moves = []
    for p in policy.params:
        a, b = float(old.get(p.name, p.default)), float(new.get(p.name, p.default))
        if abs(b - a) > 1e-9:
            unit = f" {p.unit}" if p.unit not in ("", "1") else ""
            moves.append((abs(b - a) / (p.high - p.low), f"{p.name} {a:.3g}->{b:.3g}{unit}"))
    moves.sort(reverse=True)
    return ", ".join(m for _, m in moves[:top]) or "no parameter"
