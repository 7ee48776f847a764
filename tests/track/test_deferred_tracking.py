"""A new session's trials start before its MLflow run exists: nothing recorded before the open is lost or reordered."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from enpire.track.deferred import DeferredTracking
from enpire.track.journal import Journal
from enpire.track.observers import Tracking
from tests.fleet.support import migrated_store


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_proposal(self, ev: Any) -> None:
        self.events.append(("proposal", ev))

    def on_trial(self, ev: Any, record: Any) -> None:
        self.events.append(("trial", record))

    def on_iteration(self, event: Any) -> None:
        self.events.append(("iteration", event))

    def on_finish(self, end: Any) -> bool:
        self.events.append(("finish", end))
        return True


class OpenedTracking(Tracking):
    def __init__(self, journal: Journal, recorder: Recorder) -> None:
        super().__init__(SimpleNamespace(run_id="run-1", fatal=None), journal, None)  # type: ignore[arg-type]
        self.recorder = recorder

    def observers(self) -> list[Any]:
        return [self.recorder]


__all__ = ["migrated_store"]


def test_events_before_the_run_exists_reach_it_in_order_after_the_open(tmp_path: Path) -> None:
    release, recorder = threading.Event(), Recorder()
    journal = Journal(tmp_path / "journal.jsonl")

    def open_run(j: Journal) -> Tracking:
        release.wait(5)
        return OpenedTracking(j, recorder)

    tracking = DeferredTracking(SimpleNamespace(), journal, open_run)  # type: ignore[arg-type]
    _, mlflow = tracking.observers()
    mlflow.on_proposal("ev-0")
    mlflow.on_trial("ev-0", "trial-0")
    assert tracking.tracker is None and recorder.events == []  # held: the run does not exist yet
    release.set()
    assert tracking.wait() and tracking.tracker.run_id == "run-1"
    mlflow.on_trial("ev-0", "trial-1")
    mlflow.on_iteration("it-0")
    assert mlflow.on_finish("end")
    assert recorder.events == [("proposal", "ev-0"), ("trial", "trial-0"), ("trial", "trial-1"),
                               ("iteration", "it-0"), ("finish", "end")]


def test_an_open_that_fails_is_the_sessions_fatal_error_and_its_end_is_not_recorded(tmp_path: Path) -> None:
    def open_run(j: Journal) -> Tracking:
        raise OSError("database is locked")

    tracking = DeferredTracking(SimpleNamespace(), Journal(tmp_path / "journal.jsonl"), open_run)  # type: ignore[arg-type]
    assert not tracking.wait()
    assert tracking.fatal is not None and "database is locked" in tracking.fatal
    end = SimpleNamespace(summary={"session_id": ""})
    assert tracking.observers()[1].on_finish(end) is False  # type: ignore[arg-type]


def test_tracking_open_first_is_the_default_and_background_sessions_record_the_same(tmp_path: Path,
                                                                                  migrated_store: Path) -> None:
    """The default opens the session run before the first trial (enpire.ctl and resume reach the session from
    its first trial); `tracking.open=background` starts trials while MLflow opens and records the same session."""
    import shutil

    from mlflow.tracking import MlflowClient

    from enpire.track.deferred import defer_tracking
    from tests.fleet.support import run, spec_of

    assert not defer_tracking(spec_of())
    assert defer_tracking(spec_of("tracking.open=background"))
    trials = {}
    for mode in ("first", "background"):
        folder = tmp_path / mode
        folder.mkdir()
        shutil.copy(migrated_store, folder / "mlflow.db")
        spec = spec_of(f"tracking.uri=sqlite:///{folder}/mlflow.db", f"tracking.artifact_root={folder}/art",
                       "budget=smoke", "budget.iterations=2", f"tracking.open={mode}")
        code, summary, _ = run(spec, folder / "run")
        assert code == 0, summary
        run_data = MlflowClient(tracking_uri=spec.tracking.uri).get_run(summary["session_id"]).data
        trials[mode] = (summary["trials"], run_data.metrics["trials"])
        shutil.rmtree(folder / "art", ignore_errors=True)
    assert trials["first"] == trials["background"]
