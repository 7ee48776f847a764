"""How far an iteration's failed trials got, from its failure histogram (enpire.attribution).

A task with phases (done.phases) is a sequence of stages ending in success: a trial that never grasped
the handle got less far than one that pulled the drawer 0.11 of 0.15 m, even when both end with the
drawer shut. Progress of one group = (stages passed + closeness to the next) / stages, where the next is
the phase it never entered or, past the last phase, the failing done condition; without phases, the
closeness to the failing condition alone. Safety stops, crashes and failed resets count as no progress.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def closeness(value: float | None, op: str, threshold: float) -> float:
    """0..1: the fraction of a threshold a measured value reached (1 = met)."""
    if value is None:
        return 0.0
    if op == ">=":
        return min(1.0, max(0.0, value / threshold)) if threshold > 0 else float(value >= threshold)
    return min(1.0, max(0.0, threshold / value)) if value > 0 else 1.0


def group_progress(entry: Mapping[str, Any], done: Any) -> float:
    kind, name = entry.get("kind"), entry.get("name")
    phases = tuple(getattr(done, "phases", ()) or ())
    stages = max(1, len(phases))
    entered = max(1, int(entry.get("phase_index") or 0)) if phases else 1
    if kind == "phase":
        phase = next((p for p in phases if p.name == name), None)
        c = 0.0 if phase is None or phase.condition is None else closeness(
            entry.get("value"), phase.condition.op, phase.condition.value)
        return (entered - 1 + c) / stages
    if kind == "condition":
        cond = next((c for c in getattr(done, "conditions", ()) if c.quantity == name), None)
        c = 0.0 if cond is None else closeness(entry.get("value"), cond.op, cond.value)
        return (stages - 1 + c) / stages
    if kind == "hold":
        return (stages - 1 + 0.9) / stages
    return 0.0  # unsafe, crash, reset_failed, estopped


def histogram_progress(histogram: Sequence[Mapping[str, Any]], done: Any) -> float:
    """Count-weighted mean progress of the failed trials (1.0 when there were none)."""
    total = sum(int(e.get("count") or 0) for e in histogram)
    if total == 0:
        return 1.0
    return sum(int(e.get("count") or 0) * group_progress(e, done) for e in histogram) / total
