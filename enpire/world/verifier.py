"""The frozen verifier: judges a trial on simulator state against the done criteria.

It reads task quantities through a StateReader bound to the simulator (never anything a
policy reports), tracks how long the conditions have held, and re-checks the done
fingerprint before every verdict: if the criteria or this file changed since launch, it
refuses to judge. Its source is part of done_sha256.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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

    def begin_attempt(self) -> None:
        self._held_s = 0.0
        self._met = False

    def quantities(self) -> dict[str, float]:
        return {c.quantity: float(self._read(c.quantity)) for c in self._done.conditions}

    def step(self, dt: float) -> bool:
        """Advance by one control step of `dt` seconds; True once the predicate has held for hold_s."""
        read, ok = self._read, True
        for name, at_least, value in self._checks:  # same predicate as Condition.holds, short-circuited
            x = float(read(name))
            if not (x >= value if at_least else x <= value):
                ok = False
                break
        if ok:
            self._held_s += dt
        else:
            self._held_s = 0.0
        self._met = self._met or self._held_s >= self._done.hold_s - 1e-9
        return self._met

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
