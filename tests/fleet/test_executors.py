"""Station workers: a SIGKILLed worker's trial is recorded as crash and the station restarts;
a station that keeps failing its resets is taken out of the rotation and reported."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from enpire.fleet.local import LocalExecutor
from enpire.fleet.stations import make_station
from enpire.records import Candidate, TrialRecord, TrialRequest
from enpire.spec import ExperimentSpec, load_spec
from enpire.world.station import SimStation
from tests.fleet.support import ScriptedAgent, migrated_store, params_proposal, run, spec_of, store

__all__ = ["migrated_store", "store"]


def _request(spec: ExperimentSpec, n: int, tmp: Path) -> TrialRequest:
    return TrialRequest(f"t{n}", 0, n, Candidate("default", params=spec.policy.defaults()), out_dir=str(tmp))


def _wait_for(executor: LocalExecutor, what, timeout: float = 60.0) -> list[TrialRecord]:  # type: ignore[no-untyped-def]
    records: list[TrialRecord] = []
    deadline = time.monotonic() + timeout
    while not what(records) and time.monotonic() < deadline:
        records += executor.wait(0.2)
    return records


def test_sigkilled_worker_records_crash_and_the_station_restarts(tmp_path: Path) -> None:
    spec = load_spec(["task=drawer", "fleet=1", "executor=local", "executor.max_restarts=2", "video.enabled=false"])
    executor = LocalExecutor(spec)
    executor.start()
    try:
        first_pid = executor.pid(0)
        assert first_pid is not None and executor.idle() == [0]
        executor.submit(0, _request(spec, 1, tmp_path))
        os.kill(first_pid, signal.SIGKILL)  # the trial is in flight from the fleet's point of view
        records = _wait_for(executor, lambda r: len(r) >= 1)
        assert [r.outcome for r in records] == ["crash"]
        assert records[0].trial_id == "t1" and "restarted" in (records[0].error or "")
        assert executor.restarts() == [1]
        _wait_for(executor, lambda _r: executor.idle() == [0])
        assert executor.pid(0) not in (None, first_pid)
        executor.submit(0, _request(spec, 2, tmp_path))  # the restarted station runs real trials again
        records = _wait_for(executor, lambda r: len(r) >= 1)
        assert records[0].trial_id == "t2" and records[0].outcome not in ("crash", "reset_failed")
        assert records[0].robot_seconds > 0
    finally:
        executor.close()


def test_worker_out_of_restarts_is_marked_faulty(tmp_path: Path) -> None:
    spec = load_spec(["task=drawer", "fleet=1", "executor=local", "executor.max_restarts=0", "video.enabled=false"])
    executor = LocalExecutor(spec)
    executor.start()
    try:
        executor.submit(0, _request(spec, 1, tmp_path))
        os.kill(executor.pid(0), signal.SIGKILL)  # type: ignore[arg-type]
        records = _wait_for(executor, lambda r: len(r) >= 1)
        assert records[0].outcome == "crash"
        assert 0 in executor.faulty() and "max_restarts" in executor.faulty()[0]
        assert executor.idle() == []
    finally:
        executor.close()


def make_station_0_unresettable(spec: ExperimentSpec, index: int) -> SimStation:
    """Station 0 gets an envelope no settled arm satisfies, so every reset fails (real physics)."""
    if index == 0:
        spec = dataclasses.replace(spec, safety=dataclasses.replace(spec.safety, joint_velocity_limit_rad_s=1e-4))
    return make_station(spec, index)


def test_faulty_station_leaves_the_rotation_and_is_reported(store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "fleet=2", "budget=smoke", "budget.iterations=20", "budget.trials=10")
    code, summary, _ = run(spec, tmp_path, agents=[ScriptedAgent([params_proposal(spec, trials=2)])],
                           station_factory="tests.fleet.test_executors:make_station_0_unresettable")
    assert code == 0
    assert summary["faulty_stations"] == "1"
    client = MlflowClient(tracking_uri=spec.tracking.uri)
    experiment = client.get_run(summary["session_id"]).info.experiment_id
    rows = []
    for child in client.search_runs([experiment], f"tags.mlflow.parentRunId = '{summary['session_id']}'"):
        rows += [json.loads(x) for x in Path(client.download_artifacts(child.info.run_id, "trials.jsonl"))
                 .read_text().splitlines()]
    station0 = [r for r in rows if r["station"] == 0]
    assert len(station0) == spec.task.reset.faulty_after  # then no trial went to it again
    assert all(r["outcome"] == "reset_failed" for r in station0)
    assert len(rows) == 10 and all(r["outcome"] != "reset_failed" for r in rows if r["station"] == 1)


class HangingStation(SimStation):
    """A real station whose trials never end (a policy or simulator stuck in a loop)."""

    def run_trial(self, request: TrialRequest, policy=None):  # type: ignore[no-untyped-def]
        while True:
            time.sleep(1.0)


def make_hanging_station(spec: ExperimentSpec, index: int) -> SimStation:
    return HangingStation(spec, index)


@pytest.mark.slow  # 6-12 s: with the slow tests in CI, keeping `make test` under ten minutes
def test_a_trial_past_the_timeout_is_recorded_as_crash_and_its_worker_replaced(tmp_path: Path) -> None:
    spec = load_spec(["task=drawer", "fleet=1", "executor=local", "executor.max_restarts=1",
                      "executor.trial_timeout_s=2", "video.enabled=false"])
    executor = LocalExecutor(spec, factory="tests.fleet.test_executors:make_hanging_station")
    executor.start()
    try:
        first_pid = executor.pid(0)
        executor.submit(0, _request(spec, 1, tmp_path))
        started = time.monotonic()
        records = _wait_for(executor, lambda r: len(r) >= 1, timeout=30)
        assert [r.outcome for r in records] == ["crash"] and "trial_timeout_s=2" in (records[0].error or "")
        assert time.monotonic() - started >= 2.0
        assert executor.restarts() == [1]
        _wait_for(executor, lambda _r: executor.idle() == [0])
        assert executor.pid(0) not in (None, first_pid)  # the hung worker was killed and replaced
        assert not Path(f"/proc/{first_pid}").exists()
    finally:
        executor.close()
