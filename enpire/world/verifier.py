"""The frozen verifier: judges a trial on simulator state against the done criteria.

It reads task quantities through a StateReader bound to the simulator (never anything a
policy reports), tracks how long the conditions have held, and re-checks the done
fingerprint before every verdict: if the criteria or this file changed since launch, it
refuses to judge. Its source is part of done_sha256.

Failure attribution (docs/verifiers.md): while it judges, it also keeps, per condition, the longest
stretch the condition held and the closest it came to passing, and which of the task's declared
phases (done.phases) the attempt entered. `attribution()` assembles that once per attempt; none of it
feeds the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from enpire.spec.errors import IntegrityError
from enpire.spec.model import DoneSpec

StateReader = Callable[[str], float]


@dataclass
class Verdict:
    success: bool
    held_s: float
    reason: str
    quantities: dict[str, float] = field(default_factory=dict)


class Verifier:
    """Per-attempt success predicate with hold time; one instance per station."""

    def __init__(self, done: DoneSpec, read: StateReader, expected_sha256: str,
                 fingerprint: Callable[[], str]) -> None:
        self._done = done
        self._read = read
        self._expected = expected_sha256
        self._fingerprint = fingerprint
        self._held_s = 0.0
        self._met = False
        # (quantity, needs >=, threshold) per condition, unpacked once: step() runs every control step.
        self._checks = tuple((c.quantity, c.op == ">=", float(c.value)) for c in done.conditions)
        # phases after the first condition-less one, as (name, quantity, needs >=, threshold)
        self._phases = tuple((p.name, p.condition.quantity, p.condition.op == ">=", float(p.condition.value))
                             if p.condition is not None else (p.name, None, True, 0.0) for p in done.phases)
        self.begin_attempt()

    def begin_attempt(self) -> None:
        self._held_s = 0.0
        self._met = False
        n = len(self._checks)
        self._run = [0.0] * n  # per condition: how long it has held without interruption
        self._longest = [0.0] * n  # ... and the longest such stretch of this attempt
        self._best = [-math.inf] * n  # ... and its best signed margin (>= 0 passes)
        self._longest_all = 0.0  # longest stretch all conditions held at once
        self._phase = 0  # phases entered (the first, condition-less one, at the start)
        self._phase_best = -math.inf  # best signed margin toward the next phase
        self._enter_free_phases()

    def _enter_free_phases(self) -> None:
        """Phases without a condition are entered as soon as the phase before them is (the first: at the start)."""
        while self._phase < len(self._phases) and self._phases[self._phase][1] is None:
            self._phase += 1

    def quantities(self) -> dict[str, float]:
        return {c.quantity: float(self._read(c.quantity)) for c in self._done.conditions}

    def step(self, dt: float) -> bool:
        """Advance by one control step of `dt` seconds; True once the predicate has held for hold_s."""
        read, ok, run, longest, best = self._read, True, self._run, self._longest, self._best
        for i, (name, at_least, value) in enumerate(self._checks):  # the predicate of Condition.holds
            x = float(read(name))
            margin = x - value if at_least else value - x
            if margin > best[i]:
                best[i] = margin
            if x >= value if at_least else x <= value:
                run[i] += dt
                if run[i] > longest[i]:
                    longest[i] = run[i]
            else:
                run[i] = 0.0
                ok = False
        if ok:
            self._held_s += dt
            if self._held_s > self._longest_all:
                self._longest_all = self._held_s
        else:
            self._held_s = 0.0
        phases = self._phases
        for j in range(self._phase, len(phases)):  # the phases not entered yet (attribution only; a few reads)
            _, name, at_least, value = phases[j]
            if name is None or j < self._phase:
                continue
            x = float(read(name))
            if x >= value if at_least else x <= value:  # entering a later phase implies the ones before it
                self._phase = j + 1
                self._phase_best = -math.inf
                self._enter_free_phases()
            elif j == self._phase:
                margin = x - value if at_least else value - x
                if margin > self._phase_best:
                    self._phase_best = margin
        self._met = self._met or self._held_s >= self._done.hold_s - 1e-9
        return self._met

    def attribution(self, attempt: int, safety_stopped: bool = False) -> dict[str, Any]:
        """Why this attempt passed or failed, per condition (docs/verifiers.md: fields and signs). Built once
        at the end of an attempt from what step() kept; reads each condition's quantity once more."""
        conditions, failing = [], None
        for i, c in enumerate(self._done.conditions):
            x = _finite(self._read(c.quantity))
            margin = None if x is None else (x - c.value if c.op == ">=" else c.value - x)
            passed = margin is not None and c.holds(x)  # type: ignore[arg-type]
            if not passed and failing is None:
                failing = c.quantity
            conditions.append({"quantity": c.quantity, "op": c.op, "threshold": c.value, "value": x,
                               "margin": margin, "best_margin": _finite(self._best[i]),
                               "held_s": round(self._longest[i], 6), "passed": passed})
        out: dict[str, Any] = {
            "attempt": attempt, "passed": self._met and not (safety_stopped and not self._done.allow_safety_stop),
            "safety_stop": safety_stopped, "held_s": round(self._longest_all, 6), "hold_s": self._done.hold_s,
            "failing": None if self._met else failing or "hold_s", "conditions": conditions,
        }
        if self._phases:
            reached = self._phases[self._phase - 1][0] if self._phase else None
            nxt = self._done.phases[self._phase] if self._phase < len(self._phases) else None
            out["phase"] = reached
            out["phase_index"] = self._phase
            out["phases"] = len(self._phases)
            out["next_phase"] = None if nxt is None else nxt.name
            out["next_phase_best"] = None if nxt is None or nxt.condition is None else _phase_value(
                nxt.condition.op, nxt.condition.value, self._phase_best)
        return out

    def verdict(self, safety_stopped: bool) -> Verdict:
        """The judgement of the current attempt. Raises IntegrityError if the criteria moved."""
        actual = self._fingerprint()
        if actual != self._expected:
            raise IntegrityError("done", self._expected, actual)
        values = self.quantities()
        if safety_stopped and not self._done.allow_safety_stop:
            return Verdict(False, self._held_s, "safety stop", values)
        if self._met:
            return Verdict(True, self._held_s, f"conditions held {self._held_s:.2f} s", values)
        failing = [f"{c.quantity}={values[c.quantity]:.4g} (needs {c.op} {c.value})"
                   for c in self._done.conditions if not c.holds(values[c.quantity])]
        reason = ("not met: " + ", ".join(failing)) if failing else (
            f"held only {self._held_s:.2f} s of {self._done.hold_s} s")
        return Verdict(False, self._held_s, reason, values)


def _finite(x: float) -> float | None:
    """JSON has no NaN or inf: a value the simulator could not read, or a margin never measured, is None."""
    x = float(x)
    return x if math.isfinite(x) else None


def _phase_value(op: str, threshold: float, best_margin: float) -> float | None:
    """The best value of the next phase's quantity this attempt, from its best signed margin."""
    if not math.isfinite(best_margin):
        return None
    return threshold + best_margin if op == ">=" else threshold - best_margin
