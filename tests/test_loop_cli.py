"""End to end: the real CLI in a subprocess runs a drawer session on two station processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from enpire.track.summary import parse

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_cli_session_on_two_stations_reaches_its_end_with_the_summary(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cmd = [sys.executable, "-m", "enpire", "task=drawer", "fleet=2", "budget=small", "video.enabled=false",
           f"tracking.uri={uri}", f"tracking.artifact_root={tmp_path}/artifacts", f"hydra.run.dir={tmp_path}/run"]
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = parse(done.stdout)
    assert summary["stopped_by"] in ("done", "iterations", "trials", "robot_seconds", "wall_clock_s")
    assert summary["reached_done"] == str(summary["stopped_by"] == "done").lower()
    assert int(summary["trials"]) > 0 and summary["fleet"] == "2" and summary["agents"] == "2"
    assert 0.0 < float(summary["mru"]) <= 1.0
    session = MlflowClient(tracking_uri=uri).get_run(summary["session_id"])
    assert session.info.status == "FINISHED"
    assert session.data.metrics["trials"] == float(summary["trials"])
