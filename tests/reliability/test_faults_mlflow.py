"""Faults of the MLflow store: locked by another process, unreachable server, output disk full."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.fleet.support import migrated_store, run, spec_of, store
from tests.reliability.ctl_support import figure, trial_rows
from tests.reliability.support import add_figure

__all__ = ["migrated_store", "store"]

LOCK_S = 25.0  # longer than the busy timeout MLflow sets on its SQLite connections (20 s): writes fail

LOCKER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("COMMIT")
"""


@pytest.mark.slow
def test_store_locked_by_another_process_for_seconds_loses_nothing(
        store: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=6", "budget.trials=12", "budget.wall_clock_s=120",
                   "tracking.flush_every_s=0.2", "agent.trials_per_candidate=2")
    db = spec.tracking.uri.removeprefix("sqlite:///")
    lockers: list[subprocess.Popen] = []
    timeline: dict[str, float] = {}

    def lock_once(summary: object) -> None:
        if lockers:
            return
        proc = subprocess.Popen([sys.executable, "-c", LOCKER, db, str(LOCK_S)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        timeline["locked_at"] = time.monotonic()
        lockers.append(proc)

    caplog.set_level(logging.WARNING, logger="enpire.track.retry")
    t0 = time.monotonic()
    code, summary, text = run(spec, tmp_path / "run", on_iteration=lock_once)
    wall = time.monotonic() - t0
    assert lockers and lockers[0].wait(timeout=30) == 0
    assert code == 0, text
    assert not summary["stopped_by"].startswith("error"), summary["stopped_by"]
    retries = sum("MLflow store unavailable" in r.getMessage() for r in caplog.records)
    assert retries >= 1  # the lock was felt ...
    assert any("available again" in r.getMessage() for r in caplog.records)  # ... and survived
    # nothing lost: every iteration and every trial the summary counts is in MLflow
    client = MlflowClient(tracking_uri=spec.tracking.uri)
    session = client.get_run(summary["session_id"])
    assert session.info.status == "FINISHED"
    assert int(session.data.metrics["iterations"]) == int(summary["iterations"])
    rows = trial_rows(spec.tracking.uri, summary["session_id"])
    assert len(rows) == int(summary["trials"]) and len({r["trial_id"] for r in rows}) == len(rows)
    experiment = session.info.experiment_id
    children = client.search_runs([experiment], filter_string=f"tags.`enpire.session` = '{summary['session_id']}'")
    assert len(children) == int(summary["iterations"])  # no duplicate runs from retried writes
    add_figure("faults injected")
    add_figure("faults survived")
    figure("mlflow_lock_s", LOCK_S)
    figure("mlflow_lock_write_retries", retries)
    figure("mlflow_lock_session_wall_s", round(wall, 1))
    figure("mlflow_lock_trials_lost", 0)


def test_a_tracking_server_refusing_connections_is_a_transient_fault_and_a_full_disk_is_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from enpire.track.retry import is_disk_full, is_transient, with_retry

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with socket.socket() as s:  # a port nobody listens on: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")
    with pytest.raises(Exception) as refused:
        client.get_experiment_by_name("x")
    assert is_transient(refused.value) and not is_disk_full(refused.value)
    full = OSError(28, "No space left on device")
    assert is_disk_full(full) and not is_transient(full)
    calls, waits = [], []

    def flaky() -> str:  # refused twice, then served
        calls.append(1)
        if len(calls) < 3:
            client.get_experiment_by_name("x")
        return "written"

    stats: dict = {}
    assert with_retry(flaky, stats, sleep=waits.append) == "written"
    assert stats["retries"] == 2 and stats["recovered"] == 1 and waits == [0.2, 0.4]


@pytest.mark.slow
def test_store_locked_at_session_start_is_waited_for(store: list[str], tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A store locked when the session starts once failed the session after ~10 s; now it is retried with the same
    policy as a store locked mid-session, and the session runs once the lock is gone."""
    spec = spec_of(*store, "budget=smoke", "budget.iterations=2", "budget.trials=4")
    db = spec.tracking.uri.removeprefix("sqlite:///")
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, db, str(LOCK_S)], stdout=subprocess.PIPE, text=True)
    assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
    caplog.set_level(logging.WARNING, logger="enpire.track.retry")
    code, summary, text = run(spec, tmp_path / "run")
    assert locker.wait(timeout=60) == 0
    assert code == 0, text
    assert int(summary["trials"]) > 0 and not summary["stopped_by"].startswith("error")
    assert any("MLflow store unavailable" in r.getMessage() for r in caplog.records)
    session = MlflowClient(tracking_uri=spec.tracking.uri).get_run(summary["session_id"])
    assert session.info.status == "FINISHED"
