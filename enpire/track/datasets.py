"""Recorded and exported trial data as MLflow dataset inputs, so a run names the exact data it holds or trained on.

One call: `log_dataset(uri, run_id, name, source, digest, context, profile)` adds an input to the run
(`mlflow.log_input` for a run that is not the active one): the dataset's name, a digest of its files
(enpire.data.episodes.digest: names and contents, order-free), where it lives (an artifact folder or a local
directory) and a small profile (episodes, steps, format). Contexts used: `recorded` (a session's trajectories,
logged by enpire.data.store.RecordingObserver when the session ends), `export` (python -m enpire.export) and
`training` (a bc iteration trained from `policy.train.dataset`).
"""

from __future__ import annotations

import json
import logging
import warnings
from typing import Any

log = logging.getLogger(__name__)
DIGEST_CHARS = 32  # MLflow keeps at most 36 characters of a dataset digest


def log_dataset(uri: str, run_id: str, name: str, source: str, digest: str, context: str,
                profile: dict[str, Any] | None = None) -> None:
    """Add the dataset as an input of run `run_id` in the store `uri` (tag mlflow.data.context=`context`)."""
    from mlflow import MlflowClient
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.entities import Dataset, DatasetInput, InputTag

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = resolve_dataset_source(source)
    entity = Dataset(name=name, digest=digest[:DIGEST_CHARS], source_type=src._get_source_type(),
                     source=src.to_json(), profile=json.dumps({**(profile or {}), "sha256": digest}))
    MlflowClient(tracking_uri=uri).log_inputs(run_id, [DatasetInput(entity, [InputTag("mlflow.data.context",
                                                                                      context)])])
    log.info("dataset %s (%s) logged as an input of run %s (%s)", name, digest[:12], run_id, context)


def dataset_inputs(uri: str, run_id: str) -> list[dict[str, Any]]:
    """The run's dataset inputs as plain dicts: name, digest, source, context, profile."""
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    out = []
    for di in run.inputs.dataset_inputs:
        tags = {t.key: t.value for t in di.tags}
        out.append({"name": di.dataset.name, "digest": di.dataset.digest, "source": di.dataset.source,
                    "context": tags.get("mlflow.data.context"), "profile": json.loads(di.dataset.profile or "{}")})
    return out
