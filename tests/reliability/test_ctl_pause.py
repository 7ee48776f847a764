"""pause / resume / stop of a `python -m enpire` session from other processes (`python -m enpire.ctl`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.fleet.support import migrated_store, store
from tests.reliability.ctl_support import ctl, figure, finish, start_session, wait_state

__all__ = ["migrated_store", "store"]


@pytest.mark.slow
def test_pause_starts_nothing_resume_continues_stop_ends_cleanly(store: list[str], tmp_path: Path) -> None:
    proc = start_session(tmp_path, store, "executor=local", "fleet=2", "budget=smoke", "budget.iterations=200",
                         "budget.trials=2000", "budget.robot_seconds=100000", "budget.wall_clock_s=240",
                         "done.goal.window=10000")  # /done out of reach: the session runs until stopped
    session_id, _ = wait_state(tmp_path, proc, lambda s: s.get("trials", 0) >= 2)
    state_file = tmp_path / "control" / session_id / "state.json"
    assert ctl(tmp_path, "pause", session_id).returncode == 0
    _, paused = wait_state(tmp_path, proc, lambda s: s.get("state") == "paused" and s.get("in_flight") == 0)
    time.sleep(3.0)  # paused for 3 s: no trial and no iteration may start
    still = json.loads(state_file.read_text())
    assert still["state"] == "paused"
    assert (still["trials"], still["iterations"]) == (paused["trials"], paused["iterations"])
    assert ctl(tmp_path, "resume", session_id).returncode == 0
    wait_state(tmp_path, proc, lambda s: s.get("state") == "running" and s.get("trials", 0) > paused["trials"])
    assert ctl(tmp_path, "stop", session_id).returncode == 0
    code, summary, out = finish(proc)
    assert code == 0, out[-3000:]
    assert summary["stopped_by"] == "operator_stop"
    assert int(summary["trials"]) > paused["trials"]
    assert "session_id: " + session_id in out
    figure("pause_trials_started_while_paused_3s", still["trials"] - paused["trials"])
