"""A trained detector in MLflow: one run in `enpire/<task>/detector` with its card, metrics and weights, and
the model logged with a signature (uint8 frames (N, H, W, 3) -> P(success) (N,))."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

from enpire.detector.model import DetectorNet


class DetectorModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """The pyfunc wrapper: loads detector.pt with enpire.detector.model.load_detector (no pickled code)."""

    def load_context(self, context):  # type: ignore[no-untyped-def]  # no hints: pyfunc reads them as a schema
        from enpire.detector.model import load_detector

        self.detector = load_detector(context.artifacts["weights"])

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return self.detector.net.probabilities(np.asarray(model_input, dtype=np.uint8)).astype(np.float32)


def log_detector(uri: str, task: str, weights: Path, card: dict[str, Any], net: DetectorNet) -> str:
    import mlflow
    from mlflow.models import infer_signature

    from enpire.track.store_init import ensure_store

    ensure_store(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    name = f"enpire/{task}/detector"
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(name)
    run = client.create_run(exp_id, run_name=f"detector {task} seed={card['data']['seed']}",
                            tags={"enpire.kind": "detector", "enpire.task": task,
                                  "enpire.weights_sha256": card["weights_sha256"]})
    rid = run.info.run_id
    cfg, data, tr = card["detector"], card["data"], card["training"]
    for k, v in {**{f"detector.{k}": v for k, v in cfg.items()}, "trials": data["trials"], "seed": data["seed"],
                 "jitter": data["jitter"], "epochs": data["epochs"], "heldout": data["heldout"]}.items():
        client.log_param(rid, k, str(v))
    m = card["metrics"]
    for group in ("trials", "attempts"):
        for k in ("accuracy", "precision", "recall"):
            v = m[group][k]
            if v["value"] is not None:
                client.log_metric(rid, f"{group}_{k}", float(v["value"]))
                client.log_metric(rid, f"{group}_{k}_lcb", float(v["ci95"][0]))
        for k in ("false_success", "false_failure"):
            client.log_metric(rid, f"{group}_{k}", float(m[group][k]))
    client.log_metric(rid, "frame_accuracy", float(m["frames"]["value"] or 0.0))
    client.log_metric(rid, "train_seconds", float(tr["train_seconds"]))
    client.log_metric(rid, "collect_seconds", float(data["collect_seconds"]))
    client.log_artifact(rid, str(weights))
    client.log_dict(rid, card, "detector.json")
    size = int(cfg["image_size"])
    example = np.zeros((1, size, size, 3), np.uint8)
    signature = infer_signature(example, net.probabilities(example).astype(np.float32))
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyfunc's type-hint and input-example advice: the signature is given
        path = Path(tmp) / "model"
        mlflow.pyfunc.save_model(str(path), python_model=DetectorModel(), artifacts={"weights": str(weights)},
                                 signature=signature, pip_requirements=["torch", "enpire"])
        client.log_artifacts(rid, str(path), artifact_path="model")
    client.set_terminated(rid, "FINISHED")
    return rid
