"""The trial scheduler: dispatches trials of queued evaluations to idle stations.

Evaluations are served trial by trial, so a station that frees up immediately takes the next
trial of whatever candidate is queued (another agent's, or another candidate of the same agent)
instead of waiting for an agent to think. Re-evaluations of candidates that already have trials
go first (they are the ones close to /done), then fresh candidates in the order they came. Every dispatch is
checked against the budget ledger first; the worst-case robot time of a trial is reserved
before it starts (enpire.fleet.budget).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from enpire.fleet.budget import BudgetLedger
from enpire.fleet.executor import Executor
from enpire.records import Candidate, Evaluation, TrialRecord, TrialRequest
from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)



def trial_seed(root: int, iteration: int, k: int) -> int:
    """Seed of trial k of an iteration: a pure function of the session seed (reproducible)."""
    return int(np.random.SeedSequence([int(root), int(iteration), int(k)]).generate_state(1)[0]) & 0x7FFFFFFF


def to_candidate(ev: Evaluation) -> Candidate:
    c = ev.candidate
    return Candidate(candidate_id=ev.key, kind=c["kind"], params=dict(c.get("params", {})), source=c.get("source"),
                     checkpoint=c.get("checkpoint"))


class Scheduler:
    def __init__(self, spec: ExperimentSpec, executor: Executor, ledger: BudgetLedger, out_dir: Path) -> None:
        self.spec = spec
        self.executor = executor
        self.ledger = ledger
        self.out_dir = out_dir
        self.queue: list[Evaluation] = []  # open evaluations, oldest first
        self.running: dict[str, Evaluation] = {}  # trial_id -> its evaluation
        self.seen: dict[str, int] = {}  # candidate key -> iterations that evaluated it before
        self.blocked_by: str | None = None  # the cap that stopped the last dispatch, if any
        # record.*: trajectories are asked for until the session's recordings reach record.max_mb (docs/data.md)
        self.recording = spec.record.enabled
        self.recorded_bytes = 0

    def add(self, ev: Evaluation) -> None:
        ev.started = time.monotonic()
        self.queue.append(ev)
        self.note_evaluated(ev.key)

    def note_evaluated(self, key: str) -> None:
        """One more iteration evaluates candidate `key` (a resume counts the closed ones this way)."""
        self.seen[key] = self.seen.get(key, -1) + 1

    def undispatched(self) -> int:
        return sum(ev.trials_wanted - ev.dispatched for ev in self.queue)

    def in_flight(self) -> int:
        return len(self.running)

    def dispatch(self) -> int:
        """Start trials on every idle station while work and budget allow; returns how many started."""
        started = 0
        self.blocked_by = None
        for station in self.executor.idle():
            waiting = [e for e in self.queue if e.dispatched < e.trials_wanted and e.ready]  # bc: trained first
            if not waiting:
                break
            # re-evaluations (candidates with trials already) first: they are the ones close to /done
            ev = min(waiting, key=lambda e: (self.seen.get(e.key, 0) == 0, e.index))
            block = self.ledger.blocking_trial()
            if block is not None:
                self.blocked_by = block
                break
            k = ev.dispatched
            request = TrialRequest(
                trial_id=f"i{ev.index:04d}-t{k:03d}", iteration=ev.index, seed=trial_seed(self.spec.seed, ev.index, k),
                candidate=to_candidate(ev), record_replay=self.spec.video.enabled, out_dir=str(self.out_dir),
                record_trajectory=self.recording or ev.candidate.get("kind") == "rl",  # rl: the learner's data
            )
            self.ledger.start_trial()
            self.executor.submit(station, request)
            self.running[request.trial_id] = ev
            ev.dispatched += 1
            started += 1
        if self.blocked_by is None and self.undispatched():
            self.blocked_by = self.ledger.blocking_trial()
        return started

    def collect(self, timeout: float) -> list[tuple[Evaluation, TrialRecord]]:
        """Finished trials with their evaluations; charges the ledger."""
        out = []
        for record in self.executor.wait(timeout):
            ev = self.running.pop(record.trial_id, None)
            if ev is None:
                log.error("record of unknown trial %s dropped", record.trial_id)
                continue
            self.ledger.end_trial(record.robot_seconds)
            if record.trajectory:
                self._recorded(record.trajectory)
            ev.records.append(record)
            out.append((ev, record))
        return out

    def _recorded(self, path: str) -> None:
        """Count a written trajectory against record.max_mb; once spent, later trials are not recorded (the trials
        already running finish theirs, so the total may pass the budget by at most a trial per station)."""
        try:
            self.recorded_bytes += Path(path).stat().st_size
        except OSError:  # a station elsewhere (its file is not on this machine): counted where it is uploaded
            return
        budget = self.spec.record.max_mb * 2**20
        if self.recording and self.recorded_bytes >= budget:
            self.recording = False
            log.warning("record.max_mb spent (%.1f MiB of trajectories recorded): later trials are not recorded; "
                        "the session goes on", self.recorded_bytes / 2**20)

    def complete(self, ev: Evaluation, final: bool = False) -> bool:
        """Is `ev` finished: all wanted trials back, or (final / budget-blocked) nothing left running?"""
        running = any(e is ev for e in self.running.values())
        if running:
            return False
        if ev.dispatched >= ev.trials_wanted or final:
            return True
        return self.blocked_by is not None

    def remove(self, ev: Evaluation) -> None:
        self.queue = [e for e in self.queue if e is not ev]
