"""The transition stream from stations to the learner loses nothing across a station crash."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from enpire.fleet.local import LocalExecutor
from enpire.records import Candidate, TrialRecord, TrialRequest
from enpire.spec import load_spec
from tests.rl.conftest import FAST, prepare


def _collect(executor: LocalExecutor, n: int, timeout: float = 120.0) -> list[TrialRecord]:
    records: list[TrialRecord] = []
    deadline = time.monotonic() + timeout
    while len(records) < n and time.monotonic() < deadline:
        records += executor.wait(0.2)
    return records


def test_a_killed_station_loses_only_its_own_trial_and_every_other_transition_reaches_the_learner(
        tmp_path: Path) -> None:
    spec = load_spec([*FAST, "fleet=2", "executor=local", "executor.max_restarts=2", "done.episode.time_limit_s=1.0",
                      "done.episode.attempts=1", "policy.train.utd_ratio=0.1"])  # short trials: the stream is the point
    job, directory = prepare(spec, tmp_path / "learner")
    stop = threading.Event()
    result: list = []
    learner = threading.Thread(target=lambda: result.append(job.run(stop)))
    learner.start()
    candidate = Candidate("rl", kind="rl", checkpoint=directory)

    def request(k: int) -> TrialRequest:
        return TrialRequest(f"i0000-t{k:03d}", 0, 100 + k, candidate, record_trajectory=True, out_dir=str(tmp_path))

    executor = LocalExecutor(spec)
    executor.start()
    try:
        victim = executor.pid(0)
        assert victim is not None
        executor.submit(0, request(0))
        executor.submit(1, request(1))
        os.kill(victim, signal.SIGKILL)  # station 0 dies with its trial in flight
        records = _collect(executor, 2)
        for record in records:
            job.stream.put(record)
        deadline = time.monotonic() + 60
        while len(executor.idle()) < 2 and time.monotonic() < deadline:  # the restarted station comes back
            executor.wait(0.2)
        executor.submit(0, request(2))
        executor.submit(1, request(3))
        later = _collect(executor, 2)
        for record in later:
            job.stream.put(record)
            job.stream.put(record)  # reported twice: taken once
        records += later
    finally:
        executor.close()
        stop.set()
        learner.join(120)
    by_id = {r.trial_id: r for r in records}
    assert sorted(by_id) == [f"i0000-t{k:03d}" for k in range(4)]
    assert by_id["i0000-t000"].outcome == "crash" and not by_id["i0000-t000"].trajectory
    finished = [r for r in records if r.trajectory]
    assert len(finished) == 3 and all(r.steps > 0 for r in finished)
    _, _, metrics = result[0]
    assert metrics["trials_ingested"] == 3 and metrics["trials_without_data"] == 1
    assert metrics["online_transitions"] == sum(r.steps for r in finished)  # every step of every finished trial
    assert job.learner.buffer.size() == sum(r.steps for r in finished)
