"""The Lightning logger of a training job: every fit of one job (BC, then each DAgger round) into one MLflow run.

Why not Lightning's MLFlowLogger: MLflow params are immutable, and a training job fits more than
once into the same iteration run. MLFlowLogger logs the module's hyperparameters at every fit,
and BCNet's include the normalisation statistics of its dataset, which change when DAgger
aggregates learner states; the second fit then failed with "Changing param values is not
allowed" and every default bc recipe (`online: dagger`) crashed. It also ends the run
(`set_terminated`) when a fit ends, though the iteration's trials have not run yet: that run
belongs to the tracker, which closes it when the iteration is recorded.

What this logger writes:
- params `recipe.<key>`: the job's resolved recipe (`log_recipe`, once).
- params `bc.<name>` once per job (architecture, learning rate, observation keys, ...). The
  normalisation vectors are data, not hyperparameters: they live in the checkpoint and are not
  logged. A later fit that changes a value logs it under `bc.<stage>.<name>` instead.
- per-epoch metrics with their step: the first fit under their own names (`bc_train_loss`,
  `bc_val_loss`, `epoch`), DAgger round r under `dagger<r>/<name>`, so each round is its own curve.
"""

from __future__ import annotations

import logging
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)

DATA_STATS = frozenset({"obs_mean", "obs_std", "act_mean", "act_std"})  # dataset statistics, kept in the checkpoint
PARAM_PREFIX = "bc."


class RunLogger(Logger):
    """Logs the fits of one training job into an existing MLflow run; `for_stage` names the next fit."""

    def __init__(self, uri: str, run_id: str, stage: str = "", _shared: dict[str, str] | None = None) -> None:
        super().__init__()
        from mlflow import MlflowClient

        self.uri, self.run_id, self.stage = uri, run_id, stage
        self.client = MlflowClient(tracking_uri=uri)
        self._params = {} if _shared is None else _shared  # params this job has logged: key -> value

    def for_stage(self, stage: str) -> RunLogger:
        """The logger for the next fit of the same job (e.g. `dagger0`): same run, same params logged."""
        return RunLogger(self.uri, self.run_id, stage, self._params)

    @property
    def name(self) -> str:
        return "enpire"

    @property
    def version(self) -> str:
        return self.run_id

    @property
    def experiment(self) -> Any:
        return self.client

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        from lightning.fabric.utilities.logger import _convert_params, _flatten_dict
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        new: list[Param] = []
        for name, raw in _flatten_dict(_convert_params(params)).items():
            if name.split("/")[0] in DATA_STATS:
                continue
            value = str(raw)[:MAX_PARAM_VAL_LENGTH]
            key = PARAM_PREFIX + name
            if self._params.get(key, value) != value and self.stage:
                key = f"{PARAM_PREFIX}{self.stage}.{name}"
            if key in self._params:
                if self._params[key] != value:
                    log.warning("training param %s changed within one job (%s -> %s): not logged again",
                                key, self._params[key], value)
                continue
            self._params[key] = value
            new.append(Param(key, value))
        for i in range(0, len(new), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=new[i:i + 100])

    def log_recipe(self, recipe: Mapping[str, Any]) -> None:
        """The job's resolved recipe as params `recipe.<key>` (what the agent proposed, defaults filled in)."""
        from mlflow.entities import Param

        params = [Param(f"recipe.{k}", str(v)) for k, v in sorted(recipe.items()) if f"recipe.{k}" not in self._params]
        self._params.update((p.key, p.value) for p in params)
        if params:
            self.client.log_batch(self.run_id, params=params[:100])

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        prefix = f"{self.stage}/" if self.stage else ""
        items = [Metric(prefix + k, float(v), stamp, int(step or 0)) for k, v in metrics.items()
                 if not isinstance(v, str)]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def finalize(self, status: str) -> None:
        """Nothing to close: the iteration run stays open for its trials (the tracker ends it)."""


def for_stage(logger: Any, stage: str) -> Any:
    """`logger.for_stage(stage)` where the logger has stages (RunLogger), else the logger itself (or None)."""
    return logger.for_stage(stage) if isinstance(logger, RunLogger) else logger
