"""A new session's MLflow run, opened on a background thread while the first trials run.

Opening MLflow costs a fresh interpreter 2-3 s (importing mlflow, SQLAlchemy and alembic, then checking
the store's schema), longer than booting the first station. With `tracking.open: background`,
a new session (not `resume=`, whose state comes from MLflow before the loop may start) starts its trials at
once (the default, `first`, opens the run before the first trial: the operator can name the session to
enpire.ctl and resume a killed one from its first trial):

- the journal (enpire.track.journal) opens at once, in the run directory: every proposal, trial, closed
  iteration and charge is durable as it happens, exactly as when MLflow is open;
- the other observers (the MLflow writer, trajectory recording) get every event in the order the loop
  produced it: events before the session run exists are held here and handed over, in order, the first
  time the loop looks after the open (`ready`), and directly from then on;
- the session run's start time is the session's launch, not the moment MLflow opened;
- an open that fails is the session's fatal tracking error (exit 1, every trial still in the journal);
  a URI that cannot work (an in-memory database, a server that does not answer, a directory that cannot
  be written) never gets here: the preflight (enpire.spec.environment) refuses it with exit 2 before
  anything runs.

`defer_tracking` says which sessions may start this way: new ones whose proposals need no operator
approval (approval goes through the control channel, keyed by the session run's id).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from enpire.records import Evaluation, TrialRecord
from enpire.track.journal import Journal
from enpire.track.observers import IterationClosed, JournalObserver, SessionEnd, SessionObserver, Tracking

if TYPE_CHECKING:
    from enpire.spec.model import ExperimentSpec
    from enpire.track.writer import Tracker

log = logging.getLogger(__name__)


def defer_tracking(spec: ExperimentSpec) -> bool:
    """May this session's trials start before its MLflow run exists? Only when asked (`tracking.open:
    background`): until the run exists, enpire.ctl cannot name the session and a session killed then has no run
    to resume (its journal is all there is), so the default opens the run first."""
    supervision = dict(spec.resolved.get("supervision") or {})
    tracking = dict(spec.resolved.get("tracking") or {})
    return str(tracking.get("open", "first")) == "background" and spec.resume is None \
        and str(supervision.get("approve", "none")) != "code"


class DeferredTracking:
    """Tracking (enpire.track.observers.Tracking) of a new session whose MLflow run opens on a thread.

    The loop uses it like Tracking: `observers()`, `fatal`, `started(ledger)`, `tracker` (None until the run
    exists) and `restored` (always None: a new session). `ready()` is the loop's poll, `wait()` its last look.
    """

    restored = None
    resumes = 0

    def __init__(self, spec: ExperimentSpec, journal: Journal, open_run: Callable[[Journal], Tracking]) -> None:
        self.spec, self.journal = spec, journal
        self.opened: Tracking | None = None  # set by the thread, read once `_done` is set
        self.error: BaseException | None = None
        self.opened_at: float | None = None  # time.monotonic() when the run existed (benches read it)
        self._done = threading.Event()
        self._held: list[tuple[str, tuple[Any, ...]]] = []  # events before the run existed, in order
        self._live: list[SessionObserver] | None = None  # the opened run's observers, once handed over
        self._thread = threading.Thread(target=self._open, args=(open_run,), name="enpire-mlflow-open", daemon=True)
        self._thread.start()

    def _open(self, open_run: Callable[[Journal], Tracking]) -> None:
        try:
            self.opened = open_run(self.journal)
        except BaseException as error:  # handed to the loop as its fatal tracking error
            self.error = error
        finally:
            self.opened_at = time.monotonic()
            self._done.set()

    # ---- what the loop reads ------------------------------------------------------------------------
    @property
    def tracker(self) -> Tracker | None:
        return self.opened.tracker if self.ready() and self.opened is not None else None

    @property
    def fatal(self) -> str | None:
        if not self._done.is_set():
            return None
        if self.error is not None:
            why = str(self.error).splitlines()[0][:200] if str(self.error) else ""
            return f"MLflow could not be opened ({type(self.error).__name__}{': ' + why if why else ''})"
        return self.opened.fatal if self.opened is not None else None

    def ready(self) -> bool:
        """Is the session run open? The first True hands the held events to its observers, in order."""
        if not self._done.is_set() or self.opened is None:
            return False
        if self._live is None:
            self._live = [obs for obs in self.opened.observers() if not isinstance(obs, JournalObserver)]
            held, self._held = self._held, []
            for name, args in held:
                for obs in self._live:
                    getattr(obs, name)(*args)
            log.info("MLflow session run %s open; %d events recorded before it existed handed over",
                     self.opened.tracker.run_id, len(held))
        return True

    def wait(self) -> bool:
        """Wait for the open to end (the session's end needs the run); True when the run is open."""
        self._done.wait()
        return self.ready()

    def observers(self) -> list[SessionObserver]:
        return [JournalObserver(self.journal), _HeldUntilOpen(self)]

    def started(self, ledger: Any) -> None:
        ledger.on_charge = self.journal.charge

    def trainer_target(self) -> _WaitingTracker:
        """What a training job logs into: the tracker, waited for on the trainer's thread if not open yet."""
        return _WaitingTracker(self)

    # ---- events --------------------------------------------------------------------------------------
    def _event(self, name: str, *args: Any) -> None:
        if self.ready() and self._live is not None:
            for obs in self._live:
                getattr(obs, name)(*args)
        else:
            self._held.append((name, args))

    def _finish(self, end: SessionEnd) -> bool:
        if not self.wait() or self._live is None:
            log.error("session %s ended without an MLflow run: %s; its records are in the journal %s",
                      end.summary.get("session_id") or "(no id)", self.fatal, self.journal.path)
            return False
        ok = True
        for obs in self._live:
            ok = obs.on_finish(end) and ok
        return ok


class _HeldUntilOpen:
    """The observer the loop sees for MLflow and recording: events go through DeferredTracking, in order."""

    def __init__(self, owner: DeferredTracking) -> None:
        self.owner = owner

    def on_proposal(self, ev: Evaluation) -> None:
        self.owner._event("on_proposal", ev)

    def on_trial(self, ev: Evaluation, record: TrialRecord) -> None:
        self.owner._event("on_trial", ev, record)

    def on_iteration(self, event: IterationClosed) -> None:
        self.owner._event("on_iteration", event)

    def on_finish(self, end: SessionEnd) -> bool:
        return self.owner._finish(end)


class _WaitingTracker:
    """The tracker as a training job sees it (enpire.fleet.trainer_slot.iteration_run_opener): `spec` at once,
    `open_iteration_run` once the session run exists (the trainer's thread waits for it, never the loop)."""

    def __init__(self, owner: DeferredTracking) -> None:
        self.owner = owner
        self.spec = owner.spec

    def open_iteration_run(self, index: int) -> str:
        self.owner._done.wait()
        if self.owner.opened is None:
            raise RuntimeError(f"no MLflow run to log training into: {self.owner.fatal}")
        return self.owner.opened.tracker.open_iteration_run(index)
