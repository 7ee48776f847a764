"""A Hydra multirun on the joblib launcher: two sessions at once on one machine, one MLflow store.

The real CLI in a subprocess, real sessions (budget=smoke), MLflow on SQLite. The store is
created first with `ensure_store`, as the CLI does, because concurrent first use of a SQLite
store races on its migrations. Slow: two sessions with their station processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from enpire.track.store_init import ensure_store

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("launcher", [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                                      ["hydra/launcher=enpire_joblib"]], ids=["joblib", "enpire_joblib"])
def test_joblib_sweep_records_both_sessions_in_one_store(tmp_path: Path, launcher: list[str]) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    ensure_store(uri)
    sweep_dir = tmp_path / "multirun"
    cmd = [sys.executable, "-m", "enpire", "-m", *launcher, "budget=smoke", "budget.iterations=8", "budget.trials=24",
           "budget.robot_seconds=1000", "seed=0,1", "video.enabled=false",
           "done.goal.window=1000",  # /done out of reach: each session runs all its trials
           f"tracking.uri={uri}", f"tracking.artifact_root={tmp_path}/artifacts", f"hydra.sweep.dir={sweep_dir}"]
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("enpire/drawer")
    assert exp is not None, "no session wrote to the store"
    sessions = client.search_runs([exp.experiment_id], "tags.`enpire.kind` = 'session'")
    assert len(sessions) == 2
    assert sorted(s.data.params["seed"] for s in sessions) == ["0", "1"]
    assert all(s.info.status == "FINISHED" for s in sessions)
    sweeps = {s.data.tags.get("enpire.sweep") for s in sessions}
    assert sweeps == {str(sweep_dir)}, sweeps
    for s in sessions:  # each session's iterations carry the sweep too, so a report can group them
        its = client.search_runs([exp.experiment_id], f"tags.`enpire.session` = '{s.info.run_id}'")
        assert its and {i.data.tags.get("enpire.sweep") for i in its} == {str(sweep_dir)}
        assert sum(i.data.metrics["trials"] for i in its) == s.data.metrics["trials"] > 0
    # joblib ran them side by side, not one after the other: both jobs had begun (Hydra writes a job's
    # .hydra/config.yaml as it starts it) before either session ended. The sessions' own MLflow runs are too
    # short to compare (a session may run its trials in ~1 s after a start-up of 3-5 s that varies by job).
    began = [p.stat().st_mtime * 1000 for p in sweep_dir.glob("*/.hydra/config.yaml")]
    assert len(began) == 2
    assert max(began) < min(s.info.end_time for s in sessions)
