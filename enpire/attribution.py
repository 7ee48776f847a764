"""Failure histograms: an iteration's failed trials grouped by why they failed.

Each failed trial (pass@1 false) is put in one group by its first attempt's attribution (the verifier's,
enpire.world.verifier.Verifier.attribution; the first attempt is the one pass@1 judges): the phase it
never entered when the task declares phases (done.phases) and the attempt stopped short of the last,
else the first condition failing at the end, else a hold too short; safety stops, crashes, failed resets
and estops are groups of their own. A group carries its count and a typical (median) measured value, and
a label a person reads: "handle never grasped (the drawer never moved 1 cm) x 7",
"drawer_opening 0.11 of >= 0.15 m x 2".

Plain data in, plain data out (no simulator, no spec objects beyond duck-typed `done` fields): agents,
tracking and the report all read the same entries.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from enpire.records import TrialRecord


def _median(values: Sequence[float | None]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return statistics.median(known) if known else None


def _group(rec: TrialRecord) -> tuple[str, str, float | None]:
    """(kind, name, measured value) of one failed trial: kind is phase, condition, hold, or an outcome."""
    if rec.outcome == "unsafe":
        return "unsafe", rec.safety_events[0].kind if rec.safety_events else "safety stop", None
    if rec.outcome in ("crash", "reset_failed", "estopped") or not rec.attribution:
        return rec.outcome, rec.outcome, None
    a = rec.attribution[0]
    if a.get("next_phase") is not None:
        return "phase", str(a["next_phase"]), a.get("next_phase_best")
    failing = a.get("failing")
    if failing == "hold_s" or failing is None:
        return "hold", "hold_s", a.get("held_s")
    value = next((c.get("value") for c in a.get("conditions", ()) if c.get("quantity") == failing), None)
    return "condition", str(failing), value


def _fmt(x: float | None) -> str:
    return "?" if x is None else f"{x:.2g}" if abs(x) < 0.01 else f"{x:.3g}"


def _label(kind: str, name: str, typical: float | None, done: Any, units: Mapping[str, str]) -> str:
    if kind == "phase":
        phase = next((p for p in getattr(done, "phases", ()) if p.name == name), None)
        text = (phase.missed if phase is not None and phase.missed else f"{name} never reached")
        if phase is not None and phase.condition is not None and typical is not None:
            c = phase.condition
            best = f"best {c.quantity} {_fmt(typical)} {units.get(c.quantity, '')}".rstrip()
            text += f" [{best}, needs {c.op} {c.value:g}]"
        return text
    if kind == "condition":
        cond = next((c for c in getattr(done, "conditions", ()) if c.quantity == name), None)
        bound = f"{cond.op} {cond.value:g}" if cond is not None else "the threshold"
        return f"{name} {_fmt(typical)} of {bound} {units.get(name, '')}".rstrip()
    if kind == "hold":
        return f"conditions held only {_fmt(typical)} of {getattr(done, 'hold_s', '?')} s"
    if kind == "unsafe":
        return f"safety stop: {name}"
    return {"crash": "policy crashed", "reset_failed": "reset failed", "estopped": "estopped"}.get(kind, kind)


def failure_histogram(records: Sequence[TrialRecord], done: Any,
                      units: Mapping[str, str] | None = None) -> tuple[dict[str, Any], ...]:
    """The failed trials of `records` grouped (most frequent first, then by label): one dict per group with
    kind, name (the phase never entered or the failing quantity), count, typical value, phase reached
    (the most common one of the group) and label."""
    units = units or {}
    groups: dict[tuple[str, str], list[TrialRecord]] = {}
    values: dict[tuple[str, str], list[float | None]] = {}
    for rec in records:
        if rec.pass_at_1:
            continue
        kind, name, value = _group(rec)
        groups.setdefault((kind, name), []).append(rec)
        values.setdefault((kind, name), []).append(value)
    out = []
    for (kind, name), recs in groups.items():
        typical = _median(values[(kind, name)])
        phases = [r.attribution[0].get("phase") for r in recs if r.attribution]
        reached = max(set(phases), key=lambda p: (phases.count(p), str(p))) if phases else None
        index = next((r.attribution[0].get("phase_index") for r in recs
                      if r.attribution and r.attribution[0].get("phase") == reached), None)
        out.append({"kind": kind, "name": name, "count": len(recs),
                    "value": None if typical is None else round(typical, 6), "phase": reached,
                    "phase_index": index, "phases": len(getattr(done, "phases", ()) or ()),
                    "label": _label(kind, name, typical, done, units)})
    out.sort(key=lambda e: (-e["count"], e["label"]))
    return tuple(out)


def histogram_line(histogram: Sequence[Mapping[str, Any]], limit: int = 4) -> str:
    """One line for tables and prompts: "handle never grasped x 7; drawer_opening 0.11 of >= 0.15 m x 2"."""
    parts = [f"{e['label']} x {e['count']}" for e in histogram[:limit]]
    rest = sum(int(e["count"]) for e in histogram[limit:])
    if rest:
        parts.append(f"{rest} more in {len(histogram) - limit} other groups")
    return "; ".join(parts)
