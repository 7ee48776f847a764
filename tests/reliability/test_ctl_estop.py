"""`python -m enpire.ctl estop` on a fleet running long trials: every station stops within one control step."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.fleet.support import migrated_store, store
from tests.reliability.ctl_support import ctl, figure, finish, start_session, trial_rows, wait_state
from tests.reliability.support import add_figure

__all__ = ["migrated_store", "store"]

# Trials that cannot end on their own for a long while: ten attempts of 600 s robot time each, success only
# after holding the drawer open 0.29 m (past what the default recipe pulls) for 60 s.
LONG = ["done.episode.time_limit_s=600", "done.episode.attempts=10", "done.predicate.hold_s=60",
        "done.predicate.conditions.0.value=0.29",
        "budget=smoke", "budget.robot_seconds=100000", "budget.wall_clock_s=300", "budget.trials=4"]


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "inline"])
def test_estop_stops_every_station_within_one_control_step(store: list[str], tmp_path: Path, executor: str) -> None:
    fleet = 2 if executor == "local" else 1
    proc = start_session(tmp_path, store, f"executor={executor}", f"fleet={fleet}", *LONG)
    if executor == "local":
        session_id, _ = wait_state(tmp_path, proc, lambda s: s.get("in_flight", 0) >= fleet)
        time.sleep(0.5)
    else:  # inline: the loop runs the trial itself, so its state shows no trial in flight; a trial lasts ~20 s
        session_id, _ = wait_state(tmp_path, proc, lambda s: s.get("state") == "running")
        time.sleep(6.0)
    sent = ctl(tmp_path, "estop", session_id)
    assert sent.returncode == 0, sent.stderr
    code, summary, out = finish(proc)
    assert code == 0, out[-3000:]
    assert summary["stopped_by"] == "estop"
    flag = json.loads((tmp_path / "control" / session_id / "estop.json").read_text())
    written_at, flushed_at = flag["written_at"], flag["flushed_at"]
    rows = trial_rows(store[0].split("=", 1)[1], session_id)
    # the trials in flight; a trial dispatched in the instant between the flag's write and the loop's next
    # read of it stops before its first control step: no robot moved after the estop
    moved = [row for row in rows if row["steps"] > 0]
    assert len(moved) == fleet and all(row["steps"] == 0 for row in rows if row not in moved), rows
    assert len(rows) - len(moved) <= fleet
    latencies = []
    for row in moved:
        assert row["outcome"] == "estopped", row
        events = [e for e in row["safety_events"] if e["kind"] == "estop"]
        assert len(events) == 1, row["safety_events"]
        detail = json.loads(events[0]["detail"])
        assert detail["step"] == row["steps"]  # no control step ran after the one at which the flag was seen
        # the previous read of the flag (before the last step that ran) found it unset and began before the
        # written byte was visible; the next read saw it: at most one control step ran after the write landed
        assert detail["previous_check_at"] <= flushed_at and written_at <= detail["seen_at"], (detail, flag)
        latencies.append(detail["seen_at"] - written_at)
        step_wall = (detail["seen_at"] - detail["rollout_started_at"]) / max(1, detail["step"])
        figure(f"estop_station{row['station']}_stop_step[{executor}]", detail["step"])
        figure(f"estop_station{row['station']}_mean_step_ms[{executor}]", round(1000 * step_wall, 3))
    figure(f"estop_latency_worst_ms[{executor},fleet={fleet}]", round(1000 * max(latencies), 3))
    figure(f"estop_trials_estopped[{executor}]", f"{len(rows)} of {fleet} in flight")
    add_figure("faults injected")  # an estop is an injected emergency: every robot stopped, the session ended
    add_figure("faults survived")
    again = ctl(tmp_path, "pause", session_id)
    assert again.returncode == 1 and "already ended" in again.stderr
