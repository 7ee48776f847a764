"""What the loop tells whoever records a session: trial and iteration events, and the session's end.

The loop knows SessionObserver, not MLflow nor the journal: it hands every accepted proposal, every
finished trial, every closed iteration and the end of the session to its observers, in that order of
events, and they record them. Two ship here: JournalObserver (enpire.track.journal: every event made
durable as it happens, for resume) and TrackerObserver (enpire.track.writer: the MLflow session run and
its iteration runs). `open_tracking` (enpire.track.resume) builds both, journal first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from enpire.records import Evaluation, IterationSummary, TrialRecord
from enpire.track.ballast import Ballast, end_failed
from enpire.track.retry import disk_full_reason, is_disk_full

if TYPE_CHECKING:
    from enpire.track.journal import Journal
    from enpire.track.writer import Tracker

log = logging.getLogger(__name__)


class TrackingFailed(RuntimeError):
    """The MLflow writer cannot go on (not a transient fault); the session ends with exit 1."""


@dataclass(frozen=True)
class IterationClosed:
    """A closed iteration, with what the session's run shows beside it."""

    summary: IterationSummary
    records: list[TrialRecord]  # its trials, in trial order
    raised_best: bool
    done: bool  # its candidate is the /done candidate
    transcript: list[dict[str, Any]] | None  # the agent call that proposed it
    started: float | None  # monotonic clock: queued ...
    ended: float  # ... and closed
    metrics: dict[str, float]  # the session's running metrics (ledger totals, best candidate)
    step: int  # iterations recorded so far (the metrics' step)


@dataclass(frozen=True)
class SessionEnd:
    """The end of a session: the summary (printed as `text`) and what the session run is closed with."""

    summary: dict[str, Any]
    text: str
    metrics: dict[str, float]
    tags: dict[str, str]
    idea_tree: list[dict[str, Any]]
    step: int
    status: str  # FINISHED | FAILED
    documents: dict[str, Any] = field(default_factory=dict)  # artifact name -> JSON document of the session run


class SessionObserver(Protocol):
    def on_proposal(self, ev: Evaluation) -> None: ...

    def on_trial(self, ev: Evaluation, record: TrialRecord) -> None: ...

    def on_iteration(self, event: IterationClosed) -> None: ...

    def on_finish(self, end: SessionEnd) -> bool:
        """Record the end; False when it could not be recorded (the session then exits 1)."""
        ...


@dataclass
class JournalObserver:
    journal: Journal

    def on_proposal(self, ev: Evaluation) -> None:
        self.journal.proposal(ev)

    def on_trial(self, ev: Evaluation, record: TrialRecord) -> None:
        self.journal.trial(ev, record)

    def on_iteration(self, event: IterationClosed) -> None:
        self.journal.iteration(event.summary, event.raised_best)

    def on_finish(self, end: SessionEnd) -> bool:
        self.journal.close()  # the group commit's last fsync
        return True


@dataclass
class TrackerObserver:
    """The MLflow writer's side; `ballast` keeps room to end the run FAILED when the disk fills."""

    tracker: Tracker
    ballast: Ballast | None = None
    uri: str = field(init=False)

    def __post_init__(self) -> None:
        self.uri = self.tracker.spec.tracking.uri

    def on_proposal(self, ev: Evaluation) -> None:
        pass

    def on_trial(self, ev: Evaluation, record: TrialRecord) -> None:
        pass  # MLflow gets trials with their iteration (the journal has them at once)

    def on_iteration(self, event: IterationClosed) -> None:
        self.tracker.log_iteration(event.summary, event.records, event.raised_best, transcript=event.transcript,
                                   done=event.done, started=event.started, ended=event.ended)
        self.tracker.log_session_metrics(event.metrics, event.step)

    def on_finish(self, end: SessionEnd) -> bool:
        tracker, ballast, ok = self.tracker, self.ballast, True
        try:
            tracker.close(end.metrics, end.step, end.tags, end.idea_tree, end.text, end.status, end.documents)
        except Exception as error:
            ok = False
            stopped_by = str(end.summary.get("stopped_by", ""))
            if is_disk_full(error) or "disk full" in stopped_by:
                # one clear line, and the run ended FAILED with the reason: the ballast frees the room to say so
                reason = stopped_by if "disk full" in stopped_by else \
                    f"error: output disk full ({disk_full_reason(error)})"
                log.error("the output disk is full: %s; session run %s ended FAILED", reason, tracker.run_id)
                end_failed(self.uri, tracker.run_id, reason, ballast)
            else:
                log.exception("could not finish the MLflow run %s", tracker.run_id)
        if ballast is not None:
            ballast.release()
        return ok


@dataclass
class Tracking:
    """A session's tracking, as `open_tracking` opened it: the writer, the journal, the disk-full ballast and,
    for a resumed session, the state to restore (enpire.track.resume.Restored) before the loop starts."""

    tracker: Tracker
    journal: Journal
    ballast: Ballast | None
    restored: Any = None  # enpire.track.resume.Restored | None
    resumes: int = 0  # the n of this resume (0: a new session)

    def observers(self) -> list[SessionObserver]:
        from enpire.data.store import RecordingObserver  # record.*: trajectories uploaded as they arrive

        recording = RecordingObserver.for_tracker(self.tracker)
        return [JournalObserver(self.journal), *([recording] if recording else []),
                TrackerObserver(self.tracker, self.ballast)]

    def trainer_target(self) -> Tracker:
        """What a training job logs into (enpire.fleet.trainer_slot.iteration_run_opener)."""
        return self.tracker

    def wait(self) -> bool:
        """The run is open already (enpire.track.deferred.DeferredTracking may still be opening one)."""
        return True

    @property
    def fatal(self) -> str | None:
        """Why nothing more can be recorded (e.g. the output disk is full: the loop ends the session), else None."""
        return getattr(self.tracker, "fatal", None)

    def started(self, ledger: Any) -> None:
        """The loop applied `restored` (if any) to its state and `ledger` (enpire.fleet.budget.BudgetLedger):
        from now on its charges are journalled (restored charges are not journalled twice)."""
        if self.resumes:
            self.journal.resumed(self.resumes)
        ledger.on_charge = self.journal.charge
