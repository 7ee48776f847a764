"""Many MLflow records in one transaction of an SQL tracking store (the writer's fast path).

MLflow's client writes one run the way a person logs one: `create_run`, `log_batch`, `log_artifacts`,
`set_terminated`, each its own SQLAlchemy session and commit (and `log_batch` opens three inside itself).
A long session of one-trial iterations spent ~50 ms of the writer thread per iteration there, and
the writer fell behind the loop (enpire.bench.long_session: a tail of 58% of the session's wall).

`SqlBatch` writes what the writer has queued (several finished iteration runs with their tags, params,
metrics and latest metrics; metric rows of runs that exist, such as the session run's per-trial steps)
as one transaction of MLflow's own tables through MLflow's own ORM models, values checked by MLflow's own
validators: the rows are exactly those the client calls leave. Artifacts go to the run's artifact folder
before the commit, so a run is either absent or FINISHED/FAILED with every artifact (a crash in between
leaves an orphan folder no run points to; the journal still has the iteration and resume writes it).

Only for SQL stores (sqlite, postgresql, mysql, mssql); `for_client` returns None for anything else (a
tracking server over HTTP): the writer then writes one by one through the client.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Row = tuple[str, float, int, int]  # (key, value, timestamp ms, step)


@dataclass
class NewRun:
    """A finished run to insert: what create_run + log_batch + set_terminated would leave."""

    run_id: str
    name: str
    start_time: int
    end_time: int
    status: str  # FINISHED | FAILED
    tags: dict[str, str]
    params: list[tuple[str, str]] = field(default_factory=list)
    metrics: list[Row] = field(default_factory=list)


def new_run_id() -> str:
    return uuid.uuid4().hex  # as SqlAlchemyStore.create_run


def _sanitized(value: float) -> tuple[bool, float]:
    """SqlAlchemyStore.sanitize_metric_value: NaN is stored as 0 with is_nan, +-inf as the largest float."""
    if math.isnan(value):
        return True, 0.0
    if math.isinf(value):
        return False, 1.7976931348623157e308 if value > 0 else -1.7976931348623157e308
    return False, value


class SqlBatch:
    """One transaction for a group of records; see the module docstring."""

    def __init__(self, store: Any, experiment_id: str, artifact_location: str) -> None:
        self.store = store
        self.experiment_id = experiment_id
        self.artifact_location = artifact_location

    @classmethod
    def for_client(cls, client: Any, experiment_id: str) -> SqlBatch | None:
        try:
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            store = client._tracking_client.store
            if not isinstance(store, SqlAlchemyStore):
                return None
            location = client.get_experiment(experiment_id).artifact_location
        except Exception as error:  # noqa: BLE001 - another MLflow layout: the one-by-one path still works
            log.info("batched MLflow writes off (%s): writing run by run", error)
            return None
        return cls(store, experiment_id, location)

    # ---- artifacts ------------------------------------------------------------------------------
    def artifact_uri(self, run_id: str) -> str:
        from mlflow.utils.uri import append_to_uri_path

        return append_to_uri_path(self.artifact_location, run_id, "artifacts")  # as create_run

    def _local_dir(self, run_id: str) -> Path | None:
        uri = self.artifact_uri(run_id)
        if uri.startswith("file:") or "://" not in uri:
            from mlflow.utils.file_utils import local_file_uri_to_path

            return Path(local_file_uri_to_path(uri))
        return None

    def write_artifacts(self, run_id: str, fill: Callable[[Path], None]) -> None:
        """`fill(folder)` writes the run's artifacts: straight into a local artifact folder, else into a
        temporary one uploaded as the client's log_artifacts would."""
        local = self._local_dir(run_id)
        if local is not None:
            local.mkdir(parents=True, exist_ok=True)
            fill(local)
            return
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        with tempfile.TemporaryDirectory() as tmp:
            fill(Path(tmp))
            get_artifact_repository(self.artifact_uri(run_id)).log_artifacts(tmp)

    def discard_artifacts(self, run_ids: Iterable[str]) -> None:
        """Remove artifact folders of runs a failed transaction never created (best effort, local only)."""
        for run_id in run_ids:
            local = self._local_dir(run_id)
            if local is not None:
                shutil.rmtree(local.parent, ignore_errors=True)

    # ---- the transaction ------------------------------------------------------------------------
    def commit(self, runs: list[NewRun], rows: dict[str, list[Row]]) -> None:
        """Insert `runs` and add metric `rows` to existing runs (by run id): all of it or nothing."""
        from mlflow.entities import Param, RunTag
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
        from mlflow.utils.validation import _validate_batch_log_data
        from sqlalchemy import insert

        run_rows, tag_rows, param_rows, metric_rows, latest_rows = [], [], [], [], []
        for run in runs:
            _, params, checked = _validate_batch_log_data([], [Param(k, v) for k, v in run.params],
                                                          [RunTag(k, v) for k, v in run.tags.items()])
            run_rows.append({
                "run_uuid": run.run_id, "name": run.name, "source_type": "UNKNOWN", "source_name": "",
                "entry_point_name": "", "user_id": run.tags.get("mlflow.user", "unknown"), "status": run.status,
                "start_time": run.start_time, "end_time": run.end_time, "deleted_time": None, "source_version": "",
                "lifecycle_stage": "active", "artifact_uri": self.artifact_uri(run.run_id),
                "experiment_id": int(self.experiment_id)})
            tag_rows += [{"run_uuid": run.run_id, "key": t.key, "value": t.value} for t in checked]
            param_rows += [{"run_uuid": run.run_id, "key": p.key, "value": p.value} for p in params]
            mine, latest = self._metric_rows(run.run_id, run.metrics)
            metric_rows += mine
            latest_rows += latest.values()
        with self.store.ManagedSessionMaker(read_only=False) as session:
            if run_rows:
                session.execute(insert(SqlRun.__table__), run_rows)
            for table, values in ((SqlTag, tag_rows), (SqlParam, param_rows), (SqlMetric, metric_rows),
                                  (SqlLatestMetric, latest_rows)):
                if values:
                    session.execute(insert(table.__table__), values)
            for run_id, more in rows.items():
                self._add_metrics(session, run_id, more)

    @staticmethod
    def _metric_rows(run_id: str, rows: list[Row]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """Metric rows (duplicates dropped, as MLflow drops them) and the latest row per key."""
        from mlflow.utils.validation import _validate_metric

        out: list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        latest: dict[str, dict[str, Any]] = {}
        for key, value, stamp, step in rows:
            _validate_metric(key, value, stamp, step)
            is_nan, stored = _sanitized(float(value))
            ident = (key, stamp, step, stored, is_nan)
            if ident in seen:
                continue
            seen.add(ident)
            row = {"run_uuid": run_id, "key": key, "value": stored, "timestamp": stamp, "step": step,
                   "is_nan": is_nan}
            out.append(row)
            old = latest.get(key)
            if old is None or (step, stamp, stored) > (old["step"], old["timestamp"], old["value"]):
                latest[key] = row
        return out, latest

    def _add_metrics(self, session: Any, run_id: str, rows: list[Row]) -> None:
        """Metric rows of an existing run, with its latest_metrics brought up to date (as _log_metrics)."""
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric
        from sqlalchemy import insert

        out, latest = self._metric_rows(run_id, rows)
        if not out:
            return
        session.execute(insert(SqlMetric.__table__), out)
        keys = sorted(latest)
        have: dict[str, Any] = {}
        for i in range(0, len(keys), 500):
            for m in session.query(SqlLatestMetric).filter(SqlLatestMetric.run_uuid == run_id,
                                                             SqlLatestMetric.key.in_(keys[i:i + 500])):
                have[m.key] = m
        fresh = []
        for key, row in latest.items():
            old = have.get(key)
            if old is None:
                fresh.append(row)
            elif (row["step"], row["timestamp"], row["value"]) > (old.step, old.timestamp, old.value):
                old.value, old.step, old.timestamp, old.is_nan = row["value"], row["step"], row["timestamp"], \
                    row["is_nan"]
        if fresh:
            session.execute(insert(SqlLatestMetric.__table__), fresh)
