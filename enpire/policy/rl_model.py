"""An rl checkpoint as an MLflow model: a pyfunc wrapper of the SAC actor with a signature.

Saved locally with `mlflow.pyfunc.save_model` and uploaded into the iteration's run as artifact folder
`model` (the learner runs on the trainer slot's thread, where MLflow's fluent active-run API must not be
touched), so `mlflow.pyfunc.load_model("runs:/<iteration run>/model")` gives back a model that maps the
learner's features (float32, one row per step) to its deterministic action in [-1, 1]^5. Later iterations
warm-start from the plain SB3 checkpoint (`checkpoint/rl.zip`) that the trainer slot keeps by iteration.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

try:  # mlflow is a core dependency; the class must exist at import time for pyfunc to pickle it
    import mlflow.pyfunc as _pyfunc

    _Base: Any = _pyfunc.PythonModel
except ImportError:  # pragma: no cover
    _Base = object


class ActorModel(_Base):  # type: ignore[misc, valid-type]
    """features -> deterministic SAC action."""

    def load_context(self, context):  # type: ignore[no-untyped-def]  # no hints: pyfunc reads them as a schema
        from stable_baselines3 import SAC

        self.model = SAC.load(context.artifacts["checkpoint"], device="cpu")

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        x = np.asarray(model_input, dtype=np.float32)
        action, _ = self.model.predict(x, deterministic=True)
        return np.asarray(action, dtype=np.float32)


def log_actor_model(uri: str, run_id: str, checkpoint: str, learner: Any) -> None:
    import mlflow
    from mlflow.models import infer_signature

    obs_dim = int(learner.model.observation_space.shape[0])
    example = np.zeros((1, obs_dim), np.float32)
    signature = infer_signature(example, learner.predict(example))
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyfunc's type-hint and input-example advice: the signature is given
        path = Path(tmp) / "model"
        mlflow.pyfunc.save_model(str(path), python_model=ActorModel(), artifacts={"checkpoint": checkpoint},
                                 signature=signature, pip_requirements=["stable-baselines3", "torch"])
        mlflow.MlflowClient(tracking_uri=uri).log_artifacts(run_id, str(path), artifact_path="model")
