"""The trainer slot's entry point: a bc candidate's recipe in, a checkpoint out.

`train_candidate(spec, recipe, data_dir, tracking)` collects demonstrations (and replays the
session's successful scripted trials from their seeds), trains the BC network with
Lightning, optionally runs DAgger, and returns (checkpoint_path, trainer_seconds, metrics).
Everything runs in the calling thread or process with one torch thread (2-core machine), so
the loop can put it on a worker thread or a process pool while stations keep running.
When `tracking` names an MLflow run, every fit of the job (BC, then each DAgger round) logs into
that run through `enpire.policy.train_logger.RunLogger` (params once, per-round loss curves),
and the checkpoint is logged as its artifact `checkpoint/bc.ckpt`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from enpire.policy.bc import resolve_recipe, train_bc
from enpire.policy.dataset import Dataset
from enpire.policy.demos import collect
from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackingTarget:
    """Where training logs go: the session's tracking URI and the iteration's MLflow run id."""

    uri: str
    run_id: str


class TrainResult(NamedTuple):
    checkpoint: str
    trainer_seconds: float
    metrics: dict[str, float]


def _logger(tracking: TrackingTarget | None) -> Any:
    """One logger for the whole job: MLflow params are immutable and the job fits several times."""
    if tracking is None:
        return None
    from enpire.policy.train_logger import RunLogger

    return RunLogger(tracking.uri, tracking.run_id)


def gather(spec: ExperimentSpec, recipe: dict[str, Any], successes: Sequence[tuple[dict[str, float], int]],
           seed: int) -> tuple[Dataset, dict[str, float]]:
    """The training set the recipe asks for: an exported dataset (policy.train.dataset), or replayed successful
    trials and/or noisy scripted demos."""
    if recipe.get("dataset"):
        from enpire.policy.dataset import load_export

        return load_export(recipe["dataset"], spec.policy.action_mode == "cartesian")
    data, metrics = Dataset.empty(), {}
    if recipe["source_trials"] in ("successes", "successes_and_demos") and successes:
        by_params: dict[tuple, list[int]] = {}
        for params, trial_seed in successes:
            by_params.setdefault(tuple(sorted(params.items())), []).append(int(trial_seed))
        for params_key, seeds in by_params.items():
            part, stats = collect(spec, len(seeds), seeds=seeds, params=dict(params_key), seed=seed)
            data = data.extend(part)
            metrics["replayed_trials"] = metrics.get("replayed_trials", 0.0) + stats.kept
    if recipe["source_trials"] in ("demos", "successes_and_demos") or not len(data):
        part, stats = collect(spec, int(recipe["demos"]), noise=float(recipe["demo_noise"]), seed=seed)
        data = data.extend(part)
        metrics.update(demo_trials=float(stats.trials), demo_successes=float(stats.successes))
    return data, metrics


def train_candidate(spec: ExperimentSpec, recipe: dict[str, Any] | None, data_dir: str | Path,
                    tracking: TrackingTarget | None = None,
                    successes: Sequence[tuple[dict[str, float], int]] = (), seed: int = 0) -> TrainResult:
    """Train one bc candidate; `successes` are (scripted params, trial seed) of the session's successful trials."""
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rec = resolve_recipe(spec, recipe)
    out = Path(data_dir)
    data, metrics = gather(spec, rec, successes, seed)
    data.save(out / "dataset.npz")
    logger = _logger(tracking)
    if logger is not None:
        logger.log_recipe(rec)
    if tracking is not None and rec.get("dataset"):  # the iteration names the exact data it trained on
        from enpire.data.episodes import digest
        from enpire.track.datasets import log_dataset

        folder = Path(rec["dataset"]).resolve()
        log_dataset(tracking.uri, tracking.run_id, folder.name, folder.as_uri(),
                    digest([p for p in folder.rglob("*") if p.is_file()], folder), "training",
                    {"episodes": metrics.get("dataset_episodes", 0.0), "pairs": len(data)})
    ckpt, fit = train_bc(data, rec, out / "bc", logger=logger, seed=seed)
    metrics.update(fit)
    if rec["online"] == "dagger" and int(rec["dagger_rounds"]) > 0:
        from enpire.policy.online import dagger

        ckpt, dm, _ = dagger(spec, data, rec, out, ckpt, seed=seed, logger=logger)
        metrics.update(dm)
    seconds = time.perf_counter() - t0
    metrics["trainer_seconds"] = seconds
    if tracking is not None:
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=tracking.uri)
        client.log_artifact(tracking.run_id, ckpt, artifact_path="checkpoint")
        for k, v in metrics.items():
            client.log_metric(tracking.run_id, f"train_{k}", float(v))
    log.info("trained bc candidate in %.1f s -> %s", seconds, ckpt)
    return TrainResult(ckpt, seconds, metrics)
