"""The trainer entry point the loop schedules: checkpoint, trainer-seconds, metrics, and MLflow logging."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from enpire.policy.bc import BCPolicy
from enpire.policy.trainer import TrackingTarget, train_candidate
from enpire.spec import load_spec

# a drawer recipe that succeeds on every seed (tests/world/test_baselines_tuned.py): the replayed trial must
# be a success, and the defaults fail on about a third of the seeds at 1 ms physics
TUNED_DRAWER = {"pull_distance": 0.22, "grip_close": 1.0, "grasp_depth": 0.01}


@pytest.mark.slow  # MLflow's SQLite migrations plus training: ~15 s CPU, more under load
def test_train_candidate_logs_to_the_iteration_run(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("enpire/drawer", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(exp, tags={"enpire.kind": "iteration"})
    spec = load_spec(["task=drawer", "policy=bc"])
    recipe = {"demos": 3, "epochs": 3, "online": "none", "source_trials": "successes_and_demos"}
    ckpt, seconds, metrics = train_candidate(spec, recipe, tmp_path / "train", TrackingTarget(uri, run.info.run_id),
                                             successes=[(TUNED_DRAWER, 5004)], seed=0)
    assert Path(ckpt).is_file() and seconds > 0
    assert metrics["replayed_trials"] == 1 and metrics["demo_trials"] == 3
    BCPolicy.load(ckpt)
    logged = client.get_run(run.info.run_id).data.metrics
    assert "bc_train_loss" in logged and "train_trainer_seconds" in logged
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")] == ["checkpoint/bc.ckpt"]
