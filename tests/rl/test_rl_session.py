"""`python -m enpire task=reach policy=rl fleet=2` at the shipped defaults: runs to its budget with tracking on,
reports trainer utilisation, and logs each learner's checkpoint as an artifact and as an MLflow model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from enpire.track.summary import parse

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_an_rl_session_runs_to_its_budget_and_reports_its_trainer(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "enpire", "task=reach", "policy=rl", "fleet=2", "budget=smoke", "video.enabled=false",
           f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifact_root={tmp_path}/artifacts",
           f"hydra.run.dir={tmp_path}/run"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = parse(out.stdout)
    assert int(summary["trials"]) > 0 and int(summary["crashes"]) == 0
    assert 0.0 < float(summary["trainer_utilization"]) <= 1.0 and float(summary["trainer_seconds"]) > 0
    assert "mru" in summary
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_run(summary["session_id"]).info.experiment_id
    runs = client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{summary['session_id']}'")
    trained = [r for r in runs if "train_updates" in r.data.metrics]
    assert trained, "no iteration logged a learner"
    for r in trained:
        root = next((tmp_path / "artifacts").glob(f"*/{r.info.run_id}/artifacts"))
        assert (root / "checkpoint" / "rl.zip").is_file()
        mlmodel = (root / "model" / "MLmodel").read_text()
        assert "signature:" in mlmodel and "python_function" in mlmodel
        assert r.data.metrics["train_trials_ingested"] >= 1
