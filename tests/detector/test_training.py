"""python -m enpire.detector train: real rollouts, real rendering, Lightning training, MLflow on SQLite.

Slow: it collects and trains (a small run: 16 trials, 2 epochs); the figures of a full run are the `detector`
bench's (python -m enpire.bench detector).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from enpire import PROJECT_ROOT
from enpire.detector.model import load_detector
from enpire.track.summary import parse

pytestmark = pytest.mark.slow


def test_train_writes_weights_a_card_and_an_mlflow_model_that_agree(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "det"
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
    done = subprocess.run([sys.executable, "-m", "enpire.detector", "train", "task=drawer", "--trials", "16",
                           "--epochs", "2", "--out", str(out), "--tracking-uri", uri], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = parse(done.stdout)
    assert Path(lines["weights"]) == out / "detector.pt"
    card = json.loads((out / "detector.json").read_text())
    assert card["weights_sha256"] == lines["weights_sha256"]
    assert card["detector"]["camera"] == "drawer_side" and card["data"]["trials"] == 16
    held = card["metrics"]["trials"]["accuracy"]
    assert held["n"] == card["training"]["heldout_trials"] > 0 and 0.0 <= held["ci95"][0] <= held["ci95"][1] <= 1.0
    assert card["data"]["sources"] and sum(card["data"]["sources"].values()) == 16

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("enpire/drawer/detector")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_id == lines["mlflow_run_id"] and run.data.tags["enpire.kind"] == "detector"
    assert "trials_accuracy" in run.data.metrics and run.data.params["detector.camera"] == "drawer_side"
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"detector.pt", "detector.json", "model"} <= names
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert model.metadata.signature is not None
    frames = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    local = load_detector(out / "detector.pt").net.probabilities(frames)
    assert np.allclose(model.predict(frames), local, atol=1e-6)  # the logged model is the written one
