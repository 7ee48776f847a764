"""RayExecutor on a real local Ray instance: stations as actors, dead actors replaced, lost trials recorded.

One Ray instance serves the module (start-up takes seconds on two busy cores). Every test here
starts Ray actors that build real MuJoCo stations, so all are marked slow.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from enpire.fleet.executor import crash_record
from enpire.fleet.ray_executor import RayExecutor
from enpire.fleet.stations import make_station
from enpire.records import Candidate, TrialRecord, TrialRequest
from enpire.spec import ExperimentSpec, load_spec

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

HANG_SEED = 424242  # a trial with this seed hangs: the stand-in for a stuck simulation
HANG_S = 60.0
FACTORY = f"{__name__}:hanging_station"


class _Hanging:
    """A real SimStation, except that the trial with HANG_SEED sleeps first (long enough to be killed)."""

    def __init__(self, spec: ExperimentSpec, index: int) -> None:
        self._station = make_station(spec, index)
        self.index = index

    @property
    def faulty(self) -> bool:
        return self._station.faulty

    def run_trial(self, request: TrialRequest) -> TrialRecord:
        if request.seed == HANG_SEED:
            time.sleep(HANG_S)
            return crash_record(request, self.index, HANG_S, "should have been killed")
        return self._station.run_trial(request)

    def close(self) -> None:
        self._station.close()


def hanging_station(spec: ExperimentSpec, index: int) -> _Hanging:
    return _Hanging(spec, index)


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=4, include_dashboard=False, object_store_memory=128 * 1024**2, log_to_driver=False,
             logging_level="WARNING")
    yield
    ray.shutdown()


def _spec(*overrides: str) -> ExperimentSpec:
    return load_spec(["task=drawer", "executor=ray", "video.enabled=false", *overrides])


def _request(spec: ExperimentSpec, trial_id: str, seed: int, tmp_path: Path) -> TrialRequest:
    return TrialRequest(trial_id=trial_id, iteration=0, seed=seed,
                        candidate=Candidate("defaults", params=spec.policy.defaults()), out_dir=str(tmp_path))


def _collect(executor: RayExecutor, n: int, limit_s: float = 120.0) -> list[TrialRecord]:
    out: list[TrialRecord] = []
    deadline = time.monotonic() + limit_s
    while len(out) < n and time.monotonic() < deadline:
        out.extend(executor.wait(0.5))
    assert len(out) >= n, f"only {len(out)} of {n} records within {limit_s} s"
    return out


def _until_idle(executor: RayExecutor, station: int, limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while station not in executor.idle():
        assert time.monotonic() < deadline, f"station {station} did not come back within {limit_s} s"
        assert executor.wait(0.5) == []


def _until_busy_for(executor: RayExecutor, station: int, seconds: float) -> None:
    """Let the hanging trial really start on its actor before killing it."""
    time.sleep(seconds)
    assert station not in executor.idle()


def test_killed_actors_lose_no_trial_and_are_replaced(ray_instance: None, tmp_path: Path) -> None:
    spec = _spec("fleet=2", "executor.max_restarts=2")
    executor = RayExecutor(spec, FACTORY)
    executor.start()
    try:
        assert sorted(executor.idle()) == [0, 1]
        first_pid = executor.where(0)["pid"]
        executor.submit(0, _request(spec, "hang-0", HANG_SEED, tmp_path))
        executor.submit(1, _request(spec, "real-1", 1, tmp_path))
        [real] = _collect(executor, 1)
        assert real.trial_id == "real-1" and real.outcome != "crash" and real.robot_seconds > 0

        _until_busy_for(executor, 0, 1.0)
        ray.kill(executor.actor(0))  # the station dies mid-trial
        [lost] = _collect(executor, 1)
        assert lost.trial_id == "hang-0" and lost.station == 0 and lost.outcome == "crash"
        assert "died" in (lost.error or "") and lost.wall_s >= 1.0
        assert executor.restarts() == [1, 0] and executor.faulty() == {}

        _until_idle(executor, 0)
        assert executor.where(0)["pid"] != first_pid  # a fresh actor, not the dead one
        executor.submit(0, _request(spec, "after-restart", 2, tmp_path))
        [after] = _collect(executor, 1)
        assert after.station == 0 and after.outcome != "crash" and after.robot_seconds > 0

        # the worker process SIGKILLed (OOM killer, segfault): the same recovery
        executor.submit(1, _request(spec, "hang-1", HANG_SEED, tmp_path))
        _until_busy_for(executor, 1, 1.0)
        os.kill(executor.where(1)["pid"], signal.SIGKILL)
        [killed] = _collect(executor, 1)
        assert killed.trial_id == "hang-1" and killed.outcome == "crash"
        assert executor.restarts() == [1, 1]
        _until_idle(executor, 1)
        assert executor.busy_seconds()[0] >= 1.0 and executor.in_flight() == 0
    finally:
        executor.close()
    assert ray.is_initialized()  # the executor did not start this instance, so it leaves it running


def test_hung_trial_times_out_and_station_gives_up_after_max_restarts(ray_instance: None, tmp_path: Path) -> None:
    spec = _spec("fleet=1", "executor.trial_timeout_s=2", "executor.max_restarts=0")
    executor = RayExecutor(spec, FACTORY)
    executor.start()
    try:
        started = time.monotonic()
        executor.submit(0, _request(spec, "hang", HANG_SEED, tmp_path))
        [record] = _collect(executor, 1, limit_s=60.0)
        assert record.outcome == "crash" and "trial_timeout_s" in (record.error or "")
        assert 2.0 <= time.monotonic() - started < HANG_S
        assert 0 in executor.faulty() and "max_restarts" in executor.faulty()[0]
        assert executor.idle() == [] and executor.restarts() == [0]
    finally:
        executor.close()
