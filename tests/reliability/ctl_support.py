"""Helpers of the operator-control and fault tests: a session in its own process, ctl as a command, figures.

The session runs as `python -m enpire` in a subprocess and the operator's commands go through
`python -m enpire.ctl` in other subprocesses: the control channel is tested across real processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from enpire import PROJECT_ROOT

FIGURES: dict[str, Any] = {}  # printed at the end of the run by conftest.py (figures of the reliability suite)


def figure(name: str, value: Any) -> None:
    FIGURES[name] = value
    print(f"figure {name}: {value}")


def env() -> dict[str, str]:
    return {**os.environ, "MUJOCO_GL": "egl", "PYTHONPATH": str(PROJECT_ROOT)}


def start_session(tmp: Path, store: list[str], *overrides: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "enpire", "task=drawer", "video.enabled=false", *store,
            f"supervision.control_root={tmp}/control", f"hydra.run.dir={tmp}/run", *overrides]
    # output to a file, not a pipe: a long session logs more than a pipe buffers and would block writing it
    log_path = tmp / "session.out"
    with open(log_path, "w") as out:
        proc = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env(), stdout=out, stderr=subprocess.STDOUT, text=True)
    proc.log_path = log_path  # type: ignore[attr-defined]
    return proc


def output(proc: subprocess.Popen) -> str:
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


def ctl(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "enpire.ctl", *args, "--control-root", f"{tmp}/control"],
                          cwd=PROJECT_ROOT, env=env(), capture_output=True, text=True, timeout=60)


def wait_state(tmp: Path, proc: subprocess.Popen, ok: Any, timeout: float = 120.0) -> tuple[str, dict]:
    """(session id, state.json) once `ok(state)` holds; fails if the session exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"session exited early ({proc.returncode}):\n{output(proc)[-3000:]}"
        root = tmp / "control"
        for d in root.iterdir() if root.is_dir() else []:
            try:
                state = json.loads((d / "state.json").read_text())
            except (OSError, ValueError):
                continue
            if ok(state):
                return d.name, state
        time.sleep(0.1)
    raise AssertionError(f"session state never satisfied the wait within {timeout} s:\n{output(proc)[-3000:]}")


def finish(proc: subprocess.Popen, timeout: float = 120.0) -> tuple[int, dict[str, str], str]:
    from enpire.track.summary import parse

    proc.wait(timeout=timeout)
    out = output(proc)
    return proc.returncode, parse(out), out


def trial_rows(uri: str, session_id: str) -> list[dict]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_run(session_id).info.experiment_id
    rows = []
    for run in client.search_runs([exp], filter_string=f"tags.`enpire.session` = '{session_id}'"):
        path = client.download_artifacts(run.info.run_id, "trials.jsonl")
        rows += [json.loads(line) for line in Path(path).read_text().splitlines() if line]
    return rows
