"""The budget ledger: what a session has spent, what is reserved, and whether anything may start.

Rule (documented in docs/loop.md): every start is checked against the caps *including what is
already reserved by work in flight*, so no cap is ever exceeded.

- iterations: one unit is reserved when an agent call starts (each call yields at most one
  iteration); it is charged when the iteration is recorded, released if the call fails.
- trials: one unit reserved at dispatch, charged when the record comes back.
- robot_seconds: a trial reserves its worst case, `done.episode.time_limit_s * attempts`, at
  dispatch and is charged its measured robot time when it ends. A trial never starts when its
  worst case could cross the cap, so `robot_seconds` used never exceeds the cap.
- wall_clock_s: nothing starts once the session's wall clock reached the cap; trials in flight
  finish and are recorded (so the session may end a trial's length past the cap).
- tokens: an agent call starts only while tokens used are below the cap (a call's size is not
  known in advance; the overshoot is at most one call's tokens).
- trainer_seconds: a training job starts only while its declared duration fits.

The ledger's totals are always the sum of what was charged (`charges` keeps every entry).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from enpire.spec.model import BudgetSpec

KEYS = ("iterations", "trials", "robot_seconds", "wall_clock_s", "tokens", "trainer_seconds")


@dataclass
class BudgetLedger:
    """Caps, charges and reservations of one session. Thread-safe (agent threads charge tokens)."""

    caps: BudgetSpec
    trial_reserve_s: float  # worst-case robot seconds of one trial
    clock: float = field(default_factory=time.monotonic)
    used: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KEYS, 0.0))
    reserved: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KEYS, 0.0))
    charges: list[tuple[str, float]] = field(default_factory=list)
    on_charge: Callable[[str, float], None] | None = None  # resume journal (enpire.track.journal)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cap(self, key: str) -> float:
        return float(getattr(self.caps, key))

    def elapsed(self) -> float:
        return time.monotonic() - self.clock

    def totals(self) -> dict[str, float]:
        """Used amounts, wall clock included (it is measured, not charged)."""
        with self._lock:
            out = dict(self.used)
        out["wall_clock_s"] = self.elapsed()
        return out

    def _fits(self, key: str, amount: float) -> bool:
        return self.used[key] + self.reserved[key] + amount <= self.cap(key) + 1e-9

    # ---- checks before starting work -------------------------------------------------------
    def blocking_trial(self) -> str | None:
        """The cap that forbids starting one more trial now, or None."""
        with self._lock:
            if self.elapsed() >= self.cap("wall_clock_s"):
                return "wall_clock_s"
            if not self._fits("trials", 1):
                return "trials"
            if not self._fits("robot_seconds", self.trial_reserve_s):
                return "robot_seconds"
        return None

    def blocking_iteration(self) -> str | None:
        """The cap that forbids starting one more agent call (= one more iteration), or None."""
        with self._lock:
            if self.elapsed() >= self.cap("wall_clock_s"):
                return "wall_clock_s"
            if not self._fits("iterations", 1):
                return "iterations"
            if self.used["tokens"] >= self.cap("tokens"):
                return "tokens"
        return None

    def blocking_proposal(self, queued_trials: int) -> str | None:
        """The cap that leaves no trial for a new proposal once the work already queued has run, or None.

        No agent call starts when none of its trials could be dispatched: `queued_trials` are accepted
        but undispatched; each is expected to cost the mean robot time of the trials so far (the worst
        case before any trial ended), and a new trial still needs its worst case to fit.
        """
        with self._lock:
            if self._committed_trials(queued_trials) + 1 > self.cap("trials") + 1e-9:
                return "trials"
            done = self.used["trials"]
            per_trial = self.used["robot_seconds"] / done if done else self.trial_reserve_s
            expected = self.used["robot_seconds"] + (self.reserved["trials"] + queued_trials) * per_trial
            if expected + self.trial_reserve_s > self.cap("robot_seconds") + 1e-9:
                return "robot_seconds"
        return None

    def trials_left(self, queued_trials: int) -> int:
        """Trials a new proposal may still have under the `trials` cap, given the work already queued."""
        with self._lock:
            return max(0, int(self.cap("trials") - self._committed_trials(queued_trials) + 1e-9))

    def _committed_trials(self, queued_trials: int) -> float:
        """Trials spent, running and queued (call with the lock held)."""
        return self.used["trials"] + self.reserved["trials"] + queued_trials

    def overshoot(self) -> dict[str, float]:
        """How far each cap was exceeded (0 for the hard caps: iterations, trials, robot_seconds)."""
        used = self.totals()
        return {k: round(max(0.0, used[k] - self.cap(k)), 3) for k in KEYS}

    def blocking_training(self, seconds: float) -> str | None:
        with self._lock:
            if self.elapsed() >= self.cap("wall_clock_s"):
                return "wall_clock_s"
            if not self._fits("trainer_seconds", seconds):
                return "trainer_seconds"
        return None

    # ---- reservations and charges ----------------------------------------------------------
    def reserve(self, key: str, amount: float) -> None:
        with self._lock:
            self.reserved[key] += amount

    def release(self, key: str, amount: float) -> None:
        with self._lock:
            self.reserved[key] = max(0.0, self.reserved[key] - amount)

    def charge(self, key: str, amount: float, reserved: float = 0.0) -> None:
        """Record `amount` spent on `key`, releasing `reserved` held for it."""
        if key not in KEYS or key == "wall_clock_s":
            raise ValueError(f"budget key: got {key!r}; expected one of {[k for k in KEYS if k != 'wall_clock_s']}")
        if amount < 0:
            raise ValueError(f"budget charge {key}: got {amount}; expected >= 0")
        with self._lock:
            self.used[key] += amount
            self.reserved[key] = max(0.0, self.reserved[key] - reserved)
            self.charges.append((key, amount))
        if self.on_charge is not None:
            self.on_charge(key, amount)

    def refund(self, key: str, amount: float) -> None:
        """Take back a charge that bought nothing (an iteration cancelled at the stop before its trials ran);
        recorded as a negative entry so the totals stay the sum of the charges."""
        with self._lock:
            amount = min(amount, self.used[key])
            self.used[key] -= amount
            self.charges.append((key, -amount))
        if self.on_charge is not None:
            self.on_charge(key, -amount)

    def start_trial(self) -> None:
        self.reserve("trials", 1)
        self.reserve("robot_seconds", self.trial_reserve_s)

    def end_trial(self, robot_seconds: float) -> None:
        self.charge("trials", 1, reserved=1)
        self.charge("robot_seconds", robot_seconds, reserved=self.trial_reserve_s)

    def sum_of_charges(self, key: str) -> float:
        with self._lock:
            return sum(a for k, a in self.charges if k == key)

    def snapshot(self) -> tuple[dict[str, float], dict[str, float]]:
        """(used, limits) for ResearchState.budgets."""
        return self.totals(), {k: self.cap(k) for k in KEYS}
