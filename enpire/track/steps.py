"""Per-trial metrics of the session run, so MLflow charts have real x-axes.

After each iteration closes, every one of its trials (in trial order) becomes one step of the session
run (step = the trial's number in the session, from 1): `trial/success` (pass@1, 0 or 1),
`trial/pass_at_k`, `trial/robot_seconds`, `trial/cum_robot_seconds` (a chart of any of them against it
is a curve over robot time) and `trial/best_success_lcb`: the highest 95% lower bound among the
candidates' *current* pooled results with at least confidence.MIN_TRIALS trials (a candidate whose
lucky start fell back no longer holds the curve up).
"""

from __future__ import annotations

from typing import Any

from enpire.records import IterationSummary, TrialRecord
from enpire.track.confidence import Confirmed, best_of, counts

TRIAL_METRIC = "trial/success"
Row = tuple[str, float, int, int]  # (key, value, timestamp ms, step)


class TrialSteps:
    def __init__(self) -> None:
        self.step = 0
        self.robot_seconds = 0.0
        self.best_lcb = 0.0
        self.candidates: dict[str, Confirmed] = {}  # candidate id -> its latest pooled result
        self.restored_best_lcb = 0.0  # resume: the last segment's figure (its candidates are not replayed here)

    def rows(self, it: IterationSummary, trials: list[TrialRecord], stamp: int) -> list[Row]:
        if it.candidate_id and it.decision not in ("rejected", "cancelled") and it.candidate_trials:
            n = it.candidate_trials
            self.candidates[it.candidate_id] = Confirmed(it.candidate_id, counts(it.candidate_success_rate, n), n)
            best = best_of(self.candidates.values())
            self.best_lcb = max(self.restored_best_lcb, best.lcb if best is not None else 0.0)
        out: list[Row] = []
        for r in sorted(trials, key=lambda r: r.trial_id):
            self.step += 1
            self.robot_seconds += r.robot_seconds
            out += [(TRIAL_METRIC, float(bool(r.pass_at_1)), stamp, self.step),
                    ("trial/pass_at_k", float(bool(r.pass_at_k)), stamp, self.step),
                    ("trial/robot_seconds", r.robot_seconds, stamp, self.step),
                    ("trial/cum_robot_seconds", self.robot_seconds, stamp, self.step),
                    ("trial/best_success_lcb", self.best_lcb, stamp, self.step)]
        return out

    def restore(self, client: Any, run_id: str) -> None:
        """Go on where the session's last segment stopped (resume)."""
        def last(key: str) -> tuple[int, float]:
            try:
                history = client.get_metric_history(run_id, key)
            except Exception:  # noqa: BLE001 - an older session without per-trial metrics
                return 0, 0.0
            m = max(history, key=lambda m: m.step, default=None)
            return (m.step, m.value) if m is not None else (0, 0.0)

        self.step = last(TRIAL_METRIC)[0]
        self.robot_seconds = last("trial/cum_robot_seconds")[1]
        self.best_lcb = self.restored_best_lcb = last("trial/best_success_lcb")[1]
