"""A station worker process killed mid-session (SIGKILL from outside): trial `crash`, worker restarted."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.fleet.support import migrated_store, store
from tests.reliability.ctl_support import ctl, figure, finish, start_session, trial_rows, wait_state
from tests.reliability.support import add_figure

__all__ = ["migrated_store", "store"]


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out


def station_workers(pid: int) -> list[int]:
    """The session's station processes: executor=local starts them from a forkserver child of the session."""
    found = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"forkserver" in cmdline:
            found += children(child)
    return found


@pytest.mark.slow
def test_killed_station_worker_is_restarted_and_its_trial_recorded_as_crash(store: list[str],
                                                                             tmp_path: Path) -> None:
    proc = start_session(tmp_path, store, "executor=local", "fleet=2", "budget=smoke", "budget.iterations=200",
                         "budget.trials=20000", "budget.robot_seconds=1000000", "budget.wall_clock_s=240",
                         "done.goal.window=10000")  # /done out of reach: the session runs until stopped
    session_id, _ = wait_state(tmp_path, proc, lambda s: s.get("trials", 0) >= 2)  # both stations up, busy ~96%
    assert len(station_workers(proc.pid)) == 2, station_workers(proc.pid)
    kills, killed = 0, set()
    deadline = time.monotonic() + 60
    while kills < 2 and time.monotonic() < deadline:  # two stations, one after the other, while they run trials
        alive = [pid for pid in station_workers(proc.pid) if pid not in killed]
        if not alive:
            time.sleep(0.1)
            continue
        try:
            os.kill(alive[0], signal.SIGKILL)
        except ProcessLookupError:  # it ended between the listing and the kill: list again
            continue
        killed.add(alive[0])
        kills += 1
        time.sleep(1.5)
    assert kills == 2, killed
    _, at_last_kill = wait_state(tmp_path, proc, lambda s: True)
    # the session goes on after the kills (which stations ran the trials is checked from MLflow below)
    wait_state(tmp_path, proc, lambda s: s.get("trials", 0) >= at_last_kill.get("trials", 0) + 20, timeout=120)
    assert ctl(tmp_path, "stop", session_id).returncode == 0
    code, summary, out = finish(proc)
    assert code == 0, out[-3000:]
    assert summary["stopped_by"] == "operator_stop"
    assert int(summary["station_restarts"]) == kills
    assert int(summary["crashes"]) <= kills  # a worker killed between two trials loses no trial
    assert summary["faulty_stations"] == "0"
    rows = sorted(trial_rows(store[0].split("=", 1)[1], summary["session_id"]),
                  key=lambda r: (r["iteration"], r["trial_id"]))
    assert {r["station"] for r in rows[-20:]} == {0, 1}  # both restarted stations ran the last trials
    add_figure("faults injected", kills)
    add_figure("faults survived", kills)
    figure("station_kills_survived", kills)
    figure("station_kill_trials_crashed", int(summary["crashes"]))
