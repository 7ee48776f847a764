"""The hold rule on the detector's output, one rule for the station and for offline evaluation.

The detector sees a frame every 1/rate_hz seconds; a frame is positive when P(success) >= threshold. An
attempt succeeds once the detector has said success for hold_s without interruption: from its first positive
frame of a run to the current one, so `frames_needed` = ceil(hold_s * rate_hz) + 1 consecutive positive
frames (a run of n frames spans n - 1 frame periods). Counting n frames as n periods would end an attempt up
to one period before the state verifier, on the same trajectory, considers the hold met.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def frames_needed(hold_s: float, rate_hz: float) -> int:
    return math.ceil(hold_s * rate_hz - 1e-9) + 1


class HoldJudge:
    def __init__(self, threshold: float, needed: int) -> None:
        self.threshold, self.needed = float(threshold), int(needed)
        self.begin()

    def begin(self) -> None:
        self.run = 0  # consecutive positive frames now
        self.longest = 0
        self.met = False
        self.frames = 0
        self.last_p = math.nan

    def see(self, p: float) -> bool:
        """One frame's probability; True once the attempt has succeeded (it stays so for the attempt)."""
        self.frames += 1
        self.last_p = float(p)
        self.run = self.run + 1 if p >= self.threshold else 0
        self.longest = max(self.longest, self.run)
        self.met = self.met or self.run >= self.needed
        return self.met


def attempt_verdict(probabilities: Iterable[float], threshold: float, needed: int) -> bool:
    """The verdict the station would give an attempt whose frames had these probabilities."""
    return decision_frame(probabilities, threshold, needed) is not None


def decision_frame(probabilities: Iterable[float], threshold: float, needed: int) -> int | None:
    """The index of the frame at which the station would declare success (and end the attempt), or None."""
    judge = HoldJudge(threshold, needed)
    for i, p in enumerate(probabilities):
        if judge.see(p):
            return i
    return None
