"""The issue's session, as a user types it: drawer judged by the shipped detector, two station processes,
tracking on (MLflow on SQLite). Slow: a whole session to /done (about two minutes here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from enpire import PROJECT_ROOT
from enpire.track.summary import parse

pytestmark = pytest.mark.slow


def test_drawer_judged_by_the_shipped_detector_reaches_done_and_reports_agreement(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
    done = subprocess.run([sys.executable, "-m", "enpire", "task=drawer", "done.verifier=classifier", "fleet=2",
                           f"tracking.uri={uri}", f"tracking.artifact_root={tmp_path}/artifacts",
                           f"hydra.run.dir={tmp_path}/run"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = parse(done.stdout)
    assert summary["reached_done"] == "true", done.stdout
    assert int(summary["shadow_trials"]) >= 50
    assert float(summary["verifier_agreement"]) >= 0.95  # the detector and the state verifier agree
    assert float(summary["done_true_success_rate"]) >= 0.9  # /done by the detector was /done by the state too

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("enpire/drawer")
    (session,) = client.search_runs([exp.experiment_id], "tags.`enpire.kind` = 'session'")
    assert session.data.metrics["verifier_agreement"] == float(summary["verifier_agreement"])
    assert session.data.params["done.verifier"] == "classifier"
    its = client.search_runs([exp.experiment_id], "tags.`enpire.kind` = 'iteration'")
    assert any("true_success_rate" in it.data.metrics for it in its)
