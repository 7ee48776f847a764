"""`python -m enpire.ctl`: the command line, stop and the approval gate on real in-process sessions.

The operator's commands are real `python -m enpire.ctl` processes sent from a watcher thread while the session
runs in the test process (real stations, MLflow on SQLite): the channel is crossed by separate processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from enpire import PROJECT_ROOT
from tests.fleet.support import ScriptedAgent, migrated_store, run, spec_of, store

__all__ = ["migrated_store", "store"]

EXAMPLE = PROJECT_ROOT / "examples/policies/drawer_policy.py"


def ctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "enpire.ctl", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60)


def state_of(root: Path) -> tuple[str, dict[str, Any]] | None:
    for d in root.iterdir() if root.is_dir() else []:
        try:
            return d.name, json.loads((d / "state.json").read_text())
        except (OSError, ValueError):
            continue
    return None


def operator(root: Path, steps: list[tuple[Callable[[dict], bool], list[str]]], log: list) -> threading.Thread:
    """A person at another terminal: waits for each condition on state.json, then runs `enpire.ctl ...`."""

    def work() -> None:
        deadline = time.monotonic() + 120
        for ok, args in steps:
            while time.monotonic() < deadline:
                found = state_of(root)
                if found and ok(found[1]):
                    out = ctl(args[0], found[0], *args[1:], "--control-root", str(root))
                    log.append((args, found[1], out.returncode, out.stdout + out.stderr))
                    break
                time.sleep(0.05)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_help_and_clear_errors_for_unknown_sessions_and_bad_commands(tmp_path: Path) -> None:
    out = ctl("--help")
    assert out.returncode == 0 and "estop" in out.stdout and "SESSION_ID" in out.stdout
    out = ctl("pause", "no-such-session", "--control-root", str(tmp_path))
    assert out.returncode == 2
    assert "unknown session 'no-such-session'" in out.stderr and str(tmp_path) in out.stderr
    out = ctl("explode", "x")
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_stop_ends_the_session_cleanly_with_operator_stop(store: list[str], tmp_path: Path) -> None:
    root = tmp_path / "control"
    spec = spec_of(*store, "budget=smoke", "budget.iterations=200", "budget.trials=400",
                   "budget.robot_seconds=3000", "budget.wall_clock_s=300", f"supervision.control_root={root}")
    log: list = []
    thread = operator(root, [(lambda s: s.get("iterations", 0) >= 1, ["stop"])], log)
    code, summary, _ = run(spec, tmp_path / "run")
    thread.join(timeout=5)
    assert log and log[0][2] == 0, log
    assert code == 0
    assert summary["stopped_by"] == "operator_stop"
    assert 1 <= int(summary["iterations"]) < 200
    run_data = MlflowClient(tracking_uri=spec.tracking.uri).get_run(summary["session_id"]).data
    assert run_data.tags["enpire.stopped_by"] == "operator_stop"
    assert run_data.tags["enpire.control_dir"] == str((root / summary["session_id"]).resolve())
    again = ctl("resume", summary["session_id"], "--control-root", str(root))
    assert again.returncode == 1 and "already ended (stopped_by: operator_stop)" in again.stderr


def test_approval_gate_holds_agent_code_until_a_person_approves_or_rejects(store: list[str], tmp_path: Path) -> None:
    root = tmp_path / "control"
    spec = spec_of(*store, "policy=code", "budget=smoke", "budget.iterations=2", "supervision.approve=code",
                   f"supervision.control_root={root}")
    source = EXAMPLE.read_text()
    proposals = [{"hypothesis": f"The example drawer policy, copy {i}, as a scripted test.", "parent": None,
                  "trials": 1, "candidate": {"kind": "code", "source": source + f"\n# copy {i}\n"}}
                 for i in range(2)]
    agent = ScriptedAgent(proposals)
    log: list = []
    thread = operator(root, [
        (lambda s: s.get("waiting_approval") == [0], ["approve", "7"]),  # not waiting: refused, nothing runs
        (lambda s: "last_error" in s, ["approve", "0"]),
        (lambda s: 1 in s.get("waiting_approval", []), ["reject", "1", "--reason", "touches the gripper map"]),
    ], log)
    code, summary, _ = run(spec, tmp_path / "run", agents=[agent])
    thread.join(timeout=5)
    assert code == 0, summary
    assert [entry[2] for entry in log] == [0, 0, 0], log
    assert log[0][1]["trials"] == 0  # held: no trial of agent code ran before the approval
    assert "iteration 7 is not waiting for approval" in log[1][1]["last_error"]
    first, second = agent.observed
    assert first.index == 0 and first.decision != "rejected" and first.trials == 1
    assert second.index == 1 and second.decision == "rejected" and second.trials == 0
    assert "touches the gripper map" in second.reason
    assert summary["rejected"] == "1" and summary["trials"] == "1"
