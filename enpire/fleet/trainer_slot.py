"""The trainer slot: one training job at a time, beside the stations, charged to `trainer_seconds`.

Why a slot of one: this machine has two CPU cores shared by the loop and the station workers,
and `train_candidate` already uses one torch thread; two jobs at once would only slow both and
the stations. The job runs on a worker thread (torch and MuJoCo release the GIL for their heavy
parts), so the loop keeps dispatching other queued candidates to stations while a bc candidate
trains: pipelining.

How a bc iteration flows:

1. the loop queues its Evaluation in the scheduler as usual; `Evaluation.ready` is False while
   its candidate has no checkpoint, so the scheduler does not dispatch it yet;
2. `pump` (every pass of the loop) starts the oldest untrained bc evaluation when the slot is
   free and the ledger allows it (`BudgetLedger.blocking_training(estimate)`: the estimate is the
   last job's measured length, so nothing starts once the cap is reached and a job that would
   clearly not fit does not start either; a running job is never cut short, so the overshoot is
   at most one job);
3. the iteration's MLflow run is created before training starts (`Tracker.open_iteration_run`),
   so every fit of the job (BC, each DAgger round) logs into it through
   `enpire.policy.train_logger.RunLogger` and the checkpoint becomes its artifact
   `checkpoint/bc.ckpt`; the writer later fills that same run with the trial table;
4. when the job ends the ledger is charged the measured seconds and the evaluation gets its
   checkpoint (ready) or is closed as `crash` with the traceback (the agent reads it);
5. a recipe trained before (a re-evaluation of the same candidate) reuses its checkpoint: no
   training, no charge.

`trainer_utilization` = busy seconds of the slot / session wall seconds (enpire.track.finish).

How an rl iteration flows (enpire.policy.rl_trainer; the slot's rl half is enpire.fleet.rl_jobs.RLJobs):

1. the first pump after the evaluation is queued publishes its snapshot 0 (synchronously, before the
   scheduler's next dispatch) and gives the candidate its snapshot directory as `checkpoint`, so its trials can
   start at once: stations are the actors, each trial runs the newest snapshot published when it started;
2. its learner starts on the slot's thread when the slot is free (one job at a time, bc or rl); until then the
   trials' records wait in the candidate's TransitionStream;
3. `note` hands every finished trial of the candidate (its record names the trajectory the station recorded)
   to that stream; the learner trains on them and publishes snapshots;
4. once the evaluation has all its trials back (or is closed) the job is told to stop: it ingests what is left,
   publishes, saves `rl.zip`, logs it, and is charged its busy seconds (demos and gradient steps, not waiting);
5. the checkpoint is kept by iteration index: a later recipe with `warm_start: <index>`, or a re-evaluation of
   the same recipe, starts its learner from it.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from enpire.fleet.budget import BudgetLedger
from enpire.fleet.rl_jobs import RLJobs
from enpire.records import Evaluation, TrialRecord
from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)

# train(spec, recipe, data_dir, tracking, successes, seed) -> (checkpoint, seconds, metrics)
TrainFn = Callable[..., Any]
MAX_SUCCESSES = 64  # replayed successful trials per training job (replays cost simulation time)


def _default_train() -> TrainFn:
    from enpire.policy.trainer import train_candidate

    return train_candidate


class TrainerSlot:
    """One training job at a time on a worker thread; the loop calls `pump` every pass."""

    def __init__(self, spec: ExperimentSpec, ledger: BudgetLedger, out_dir: Path,
                 train: TrainFn | None = None) -> None:
        self.spec, self.ledger, self.out_dir = spec, ledger, Path(out_dir)
        self._train = train
        self.trained: dict[str, str] = {}  # candidate key -> checkpoint
        self.successes: list[tuple[dict[str, float], int]] = []  # (params, seed) of verified scripted successes
        self.busy_s = 0.0
        self.jobs = 0
        self.last_job_s = 0.0
        self.blocked_by: str | None = None
        self.overlap_s = 0.0  # seconds (sampled every loop pass) with trials running while a job trained
        self._last_pump = time.monotonic()
        self._records = self._records_seen = 0  # trial records noted (all, and at the last pump)
        self._job: tuple[Evaluation, float, threading.Thread] | None = None
        self._result: tuple[Any, str | None] | None = None
        self._lock = threading.Lock()
        self.rl = RLJobs(self)

    # ---- what the loop asks ------------------------------------------------------------------
    def busy(self) -> bool:
        return self._job is not None

    def busy_seconds(self, now: float | None = None) -> float:
        """Seconds the slot has been busy, the running job included."""
        extra = ((now or time.monotonic()) - self._job[1]) if self._job is not None else 0.0
        return self.busy_s + extra

    def wants_work(self, queue: Sequence[Evaluation]) -> bool:
        """A bc session whose trainer would sit idle: ask an agent for the next recipe even while stations
        still have queued trials, so the next candidate trains while the current one is evaluated."""
        return (self.spec.policy.kind == "bc" and self._job is None
                and not any(untrained(ev) for ev in queue)
                and self.ledger.blocking_training(max(self.last_job_s, 1e-6)) is None)

    def note(self, ev: Evaluation, record: TrialRecord) -> None:
        """Count a finished trial (pipelining figure); remember verified successes of scripted candidates:
        bc recipes may replay them as data."""
        self._records += 1
        self.rl.note(ev, record)
        if ev.candidate.get("kind") == "params" and record.pass_at_1 and len(self.successes) < MAX_SUCCESSES:
            self.successes.append((dict(ev.candidate.get("params", {})), int(record.seed)))

    def pump(self, queue: Sequence[Evaluation], open_run: Callable[[int], Any] | None = None) -> None:
        """Finish a done job, give re-evaluated recipes their checkpoint, start the next job if allowed."""
        now = time.monotonic()
        ran = self._records > self._records_seen or any(ev.dispatched > len(ev.records) for ev in queue)
        if self._job is not None and ran:
            self.overlap_s += now - self._last_pump  # stations ran trials while the trainer trained
        self._last_pump, self._records_seen = now, self._records
        self._finish_job()
        self.rl.pump(queue, open_run)
        waiting = [ev for ev in queue if untrained(ev)]
        for ev in waiting:
            if ev.key in self.trained:
                self._give_checkpoint(ev, self.trained[ev.key])
        waiting = [ev for ev in waiting if not ev.ready and (self._job is None or ev is not self._job[0])]
        self.blocked_by = None
        if self._job is not None or not waiting:
            return
        block = self.ledger.blocking_training(max(self.last_job_s, 1e-6))
        if block is not None:
            self.blocked_by = block
            for ev in waiting:  # nothing starts past the cap: these close without trials
                self._close(ev, "discard", f"not trained: the {block} budget is spent "
                                           f"({self.ledger.used['trainer_seconds']:.1f} s used)")
            return
        if self.ledger.blocking_trial() is not None:
            return  # its trials could not start now: the scheduler closes it like any blocked evaluation
        self._start(waiting[0], open_run)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running job (if any) ends; the loop calls this before closing a session."""
        self.rl.stop_all()
        if self._job is not None:
            self._job[2].join(timeout)
        self._finish_job()

    # ---- jobs --------------------------------------------------------------------------------
    def _start(self, ev: Evaluation, open_run: Callable[[int], Any] | None) -> None:
        recipe = dict(ev.candidate.get("recipe") or {})
        data_dir = self.out_dir / f"i{ev.index:04d}"
        successes = list(self.successes)
        seed = int(self.spec.seed) + ev.index
        train = self._train or _default_train()

        self.start_job(ev, "trainer", "training", open_run,
                       lambda tracking: train(self.spec, recipe, data_dir, tracking, successes, seed),
                       f"iteration {ev.index} starts training ({recipe or 'policy defaults'})")

    def start_job(self, ev: Evaluation, thread_name: str, what: str, open_run: Callable[[int], Any] | None,
                  body: Callable[[Any], Any], started: str) -> None:
        """Run `body(tracking)` (tracking: the iteration's run, or None) on the slot's one job thread; its
        (result, None) or (None, traceback) is the slot's result. bc training and the rl learner both start here."""

        def job() -> None:
            try:
                tracking = open_run(ev.index) if open_run is not None else None
                out: tuple[Any, str | None] = (body(tracking), None)
            except Exception:  # the traceback goes to the trial-less iteration and the agent
                log.exception("%s of iteration %d failed", what, ev.index)
                out = (None, traceback.format_exc())
            with self._lock:
                self._result = out

        thread = threading.Thread(target=job, name=f"enpire-{thread_name}-i{ev.index}", daemon=True)
        self._job = (ev, time.monotonic(), thread)
        self.jobs += 1
        log.info("trainer: %s", started)
        thread.start()

    def _finish_job(self) -> None:
        with self._lock:
            result, self._result = self._result, None
        if self._job is None or result is None:
            return
        ev, t0, thread = self._job
        thread.join()
        self._job = None
        wall = time.monotonic() - t0
        trained, error = result
        seconds = float(trained[1]) if trained is not None else wall
        self.busy_s += seconds if ev.candidate.get("kind") == "rl" else wall  # rl: busy, not waiting for data
        self.last_job_s = seconds
        self.ledger.charge("trainer_seconds", seconds)
        if error is not None:
            self._close(ev, "crash", "training failed: " + error[-3000:])
            return
        checkpoint = str(trained[0])
        if ev.candidate.get("kind") == "rl":  # stations keep the snapshot directory; the checkpoint is kept by index
            self.rl.finished(ev, checkpoint)
            return
        self.trained[ev.key] = checkpoint
        log.info("trainer: iteration %d trained in %.1f s -> %s", ev.index, seconds, checkpoint)
        self._give_checkpoint(ev, checkpoint)

    @staticmethod
    def _give_checkpoint(ev: Evaluation, checkpoint: str) -> None:
        ev.candidate = {**ev.candidate, "checkpoint": checkpoint}

    @staticmethod
    def _close(ev: Evaluation, decision: str, reason: str) -> None:
        """No trials will run: the scheduler sees it complete and the tree records `decision`."""
        ev.closed_as = (decision, reason)
        ev.trials_wanted = ev.dispatched


def untrained(ev: Evaluation) -> bool:
    """Waits for the trainer: not ready, not closed, and not because the screen holds it (enpire.fleet.screen)."""
    return not ev.ready and ev.closed_as is None and not ev.screening


def iteration_run_opener(tracker: Any) -> Callable[[int], Any] | None:
    """index -> TrackingTarget of that iteration's MLflow run, created now; None without a tracker."""
    if tracker is None:
        return None

    def open_run(index: int) -> Any:
        from enpire.policy.trainer import TrackingTarget

        return TrackingTarget(tracker.spec.tracking.uri, tracker.open_iteration_run(index))

    return open_run
