"""The trainer slot's rl half: each rl evaluation's snapshot directory, learner job and transition stream.

See enpire.fleet.trainer_slot (how an rl iteration flows) and enpire.policy.rl_trainer (the learner job).
Kept apart from the slot so the bc path stays as it was; the slot calls `note`, `pump`, `finished` and
`stop_all`, and runs the learner as its one job (`slot._job`), so `busy()`, `wait()` and the budget checks
treat an rl learner like a bc training job.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from enpire.records import Evaluation, TrialRecord

log = logging.getLogger(__name__)


def close(ev: Evaluation, decision: str, reason: str) -> None:
    """No trials will run: the scheduler sees it complete and the tree records `decision`."""
    ev.closed_as = (decision, reason)
    ev.trials_wanted = ev.dispatched


class RLJobs:
    """The rl half of the slot: each rl evaluation's snapshot directory, learner and transition stream."""

    def __init__(self, slot: Any) -> None:
        self.slot = slot  # the TrainerSlot (not imported: it imports this module)
        self.jobs: dict[int, Any] = {}  # evaluation index -> its learner job (prepared, maybe not started)
        self.stop_events: dict[int, threading.Event] = {}
        self.pending: list[Evaluation] = []  # prepared, waiting for the slot
        self.checkpoints: dict[int, str] = {}  # iteration index -> final checkpoint (warm starts)
        self.by_key: dict[str, str] = {}  # candidate key -> its latest checkpoint (re-evaluations continue it)
        self.demos: dict[tuple, Any] = {}  # demo settings -> (transitions, stats) collected by an earlier job

    def note(self, ev: Evaluation, record: TrialRecord) -> None:
        job = self.jobs.get(ev.index)
        if job is not None and ev.candidate.get("kind") == "rl":
            job.stream.put(record)

    def pump(self, queue: Sequence[Evaluation], open_run: Callable[[int], Any] | None) -> None:
        for ev in queue:
            if ev.candidate.get("kind") == "rl" and ev.closed_as is None and ev.index not in self.jobs:
                self._prepare(ev)
        running = self.slot._job
        if running is not None and running[0].index in self.stop_events:
            ev = running[0]
            if ev.closed_as is not None or len(ev.records) >= ev.trials_wanted or not any(e is ev for e in queue):
                self.stop_events[ev.index].set()  # every trial is back: the learner wraps up
            return
        if running is None and self.pending:
            ev = self.pending.pop(0)
            block = self.slot.ledger.blocking_training(1e-6)  # an rl learner fits any allowance left
            if block is None:
                self._start(ev, open_run)
            else:  # its trials run the snapshot it was prepared with; no learner past the cap
                log.info("trainer: iteration %d gets no learner (%s budget spent)", ev.index, block)

    def _prepare(self, ev: Evaluation) -> None:
        from enpire.policy.rl_recipe import resolve_rl_recipe
        from enpire.policy.rl_trainer import RLJob
        from enpire.policy.transitions import TransitionStream

        slot, recipe = self.slot, resolve_rl_recipe(self.slot.spec, ev.candidate.get("recipe"))
        block = slot.ledger.blocking_training(max(slot.last_job_s, 1e-6))
        warm = recipe.get("warm_start")
        init_from = self.by_key.get(ev.key)
        if warm is not None:
            init_from = self.checkpoints.get(int(warm)) or self._newest_snapshot(int(warm))
            if init_from is None:
                close(ev, "crash", f"candidate.recipe.warm_start: got {warm}; expected an rl iteration of this "
                                   f"session with a checkpoint (known: {sorted(self.checkpoints)})")
                self.jobs[ev.index] = None  # type: ignore[assignment]
                return
        if block is not None and init_from is None:
            close(ev, "discard", f"not trained: the {block} budget is spent "
                                 f"({slot.ledger.used['trainer_seconds']:.1f} s used)")
            self.jobs[ev.index] = None  # type: ignore[assignment]
            return
        left = slot.ledger.cap("trainer_seconds") - slot.ledger.used["trainer_seconds"]
        job = RLJob(slot.spec, recipe, slot.out_dir / f"i{ev.index:04d}", int(slot.spec.seed) + ev.index,
                    TransitionStream(), init_from=init_from, budget_s=left,
                    device=str(dict(slot.spec.policy.train).get("device", "auto")))
        try:
            ev.candidate = {**ev.candidate, "checkpoint": job.prepare()}
        except Exception:
            log.exception("rl learner of iteration %d could not start", ev.index)
            close(ev, "crash", "rl learner failed to start: " + traceback.format_exc()[-3000:])
            self.jobs[ev.index] = None  # type: ignore[assignment]
            return
        self.jobs[ev.index] = job
        if block is not None:  # no trainer time left: its trials run the kept checkpoint as it is, no learner
            log.info("trainer: iteration %d evaluates %s without learning (%s budget spent)", ev.index, init_from,
                     block)
            return
        self.stop_events[ev.index] = threading.Event()
        self.pending.append(ev)

    def _newest_snapshot(self, index: int) -> str | None:
        """A warm start from an iteration whose learner is still wrapping up: its newest snapshot (a whole model)."""
        from enpire.policy.rl import latest_snapshot

        job = self.jobs.get(index)
        found = latest_snapshot(job.snapshots) if job is not None else None
        return str(found[1]) if found is not None else None

    @staticmethod
    def _demo_key(recipe: dict[str, Any]) -> tuple:
        return tuple(str(recipe[k]) for k in ("demos", "demo_noise", "residual", "action_scale", "reward"))

    def _start(self, ev: Evaluation, open_run: Callable[[int], Any] | None) -> None:
        slot, job, stop = self.slot, self.jobs[ev.index], self.stop_events[ev.index]
        job.demos = self.demos.get(self._demo_key(job.recipe))
        ledger = slot.ledger
        job.budget_s = ledger.cap("trainer_seconds") - ledger.used["trainer_seconds"]  # what is left now
        job.out_of_budget = lambda busy_s: ledger.blocking_training(max(busy_s, 1e-6)) is not None  # wall too

        slot.start_job(ev, "learner", "rl learner", open_run, lambda tracking: job.run(stop, tracking),
                       f"rl learner of iteration {ev.index} starts")

    def finished(self, ev: Evaluation, checkpoint: str) -> None:
        job = self.jobs.get(ev.index)
        if job is not None and job.demos is not None:
            self.demos.setdefault(self._demo_key(job.recipe), job.demos)
        self.checkpoints[ev.index] = checkpoint
        self.by_key[ev.key] = checkpoint
        log.info("trainer: rl learner of iteration %d done -> %s", ev.index, checkpoint)

    def stop_all(self) -> None:
        """The session ends: the running learner wraps up; a waiting one never starts (its trials ran snapshot 0)."""
        for index, event in self.stop_events.items():
            self.jobs[index].hurry.set()
            event.set()
        self.pending.clear()
