"""Recorded trajectories in MLflow: uploaded as a session's artifacts while it runs, fetched back by session or
trial id (for export and replay) from the store alone.

Layout: the session run's `trajectories/<trial_id>.npz` (one file per recorded trial, its own metadata inside;
enpire.data.episodes), and, when the session ends, one dataset input on the session run (context `recorded`,
enpire.track.datasets) with the digest of all of them. Readers also look in the session's iteration runs'
`trajectories/`, should a writer put them there.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from enpire.data.episodes import Episode, digest, load_dir
from enpire.records import Evaluation, TrialRecord

log = logging.getLogger(__name__)
ARTIFACT_DIR = "trajectories"
SPEC_ARTIFACT = "spec/resolved_spec.json"


class RecordingObserver:
    """A session observer (enpire.track.observers.SessionObserver) that uploads each recorded trial's trajectory
    to the session run as it arrives and logs them as the run's dataset input at the end. An upload that fails
    is logged and skipped: recording never ends a session."""

    def __init__(self, uri: str, run_id: str) -> None:
        self.uri, self.run_id = uri, run_id
        self.files: list[Path] = []
        self.steps = 0
        self.outcomes: dict[str, int] = {}
        self._repo: Any = None
        self._failed = False

    @classmethod
    def for_tracker(cls, tracker: Any) -> RecordingObserver | None:
        """The observer for a session's tracker (enpire.track.writer.Tracker), or None when nothing is recorded."""
        spec = tracker.spec
        return cls(spec.tracking.uri, tracker.run_id) if spec.record.enabled else None

    def _repository(self) -> Any:
        if self._repo is None:
            from mlflow import MlflowClient
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

            uri = MlflowClient(tracking_uri=self.uri).get_run(self.run_id).info.artifact_uri
            self._repo = get_artifact_repository(uri)
        return self._repo

    def on_proposal(self, ev: Evaluation) -> None:
        pass

    def on_trial(self, ev: Evaluation, record: TrialRecord) -> None:
        path = Path(record.trajectory) if record.trajectory else None
        if path is None or not path.is_file():
            return
        try:
            self._repository().log_artifact(str(path), ARTIFACT_DIR)
        except Exception as error:
            if not self._failed:
                log.warning("trajectory upload to run %s failed (%s); recording goes on locally", self.run_id, error)
            self._failed = True
            return
        self.files.append(path)
        self.steps += record.steps
        self.outcomes[record.outcome] = self.outcomes.get(record.outcome, 0) + 1

    def on_iteration(self, event: Any) -> None:
        pass

    def on_finish(self, end: Any) -> bool:
        if not self.files:
            return True
        try:
            from enpire.track.datasets import log_dataset

            source = f"{self._repository().artifact_uri.rstrip('/')}/{ARTIFACT_DIR}"
            log_dataset(self.uri, self.run_id, "trajectories", source, digest(self.files), "recorded",
                        {"episodes": len(self.files), "steps": self.steps, "outcomes": self.outcomes,
                         "format": "enpire-trajectory-npz"})
        except Exception as error:
            log.warning("could not log the recorded trajectories as a dataset input of run %s: %s", self.run_id, error)
        return True


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _runs_with_trajectories(client: Any, session_id: str) -> list[str]:
    run = client.get_run(session_id)
    if run.data.tags.get("enpire.kind") != "session":
        raise ValueError(f"SESSION_ID: {session_id!r} is not a session run (tag enpire.kind="
                         f"{run.data.tags.get('enpire.kind')!r}); expected the run id of a session")
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{session_id}'",
                                  max_results=50000)
    return [r for r in [session_id, *(c.info.run_id for c in children)] if client.list_artifacts(r, ARTIFACT_DIR)]


def fetch_session(uri: str, session_id: str, dest: str | Path) -> list[Episode]:
    """Download every recorded trajectory of a session into `dest`; the episodes in trial-id order."""
    client, dest = _client(uri), Path(dest)
    for run_id in _runs_with_trajectories(client, session_id):
        client.download_artifacts(run_id, ARTIFACT_DIR, str(dest))
    return load_dir(dest / ARTIFACT_DIR)


def session_spec_doc(uri: str, session_id: str) -> dict[str, Any]:
    """The session's resolved spec as launched (its `spec/resolved_spec.json`)."""
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(Path(_client(uri).download_artifacts(session_id, SPEC_ARTIFACT, tmp)).read_text())


def find_trial(uri: str, trial_id: str, session_id: str | None = None) -> tuple[str, str]:
    """(session run id, artifact path) of a recorded trial; `session_id` picks among sessions with that trial id."""
    client = _client(uri)
    if session_id:
        sessions = [session_id]
    else:
        sessions = [r.info.run_id for e in client.search_experiments()
                    for r in client.search_runs([e.experiment_id], "tags.`enpire.kind` = 'session'", max_results=5000)]
    found = []
    for sid in sessions:
        for run_id in _runs_with_trajectories(client, sid):
            names = {Path(a.path).name for a in client.list_artifacts(run_id, ARTIFACT_DIR)}
            if f"{trial_id}.npz" in names:
                found.append((sid, run_id))
    if not found:
        raise LookupError(f"TRIAL_ID: no recorded trajectory {trial_id!r} in the store {uri}"
                          + (f" (session {session_id})" if session_id else "")
                          + "; record trials with record.trajectories=all|failures|successes")
    if len(found) > 1:
        raise LookupError(f"TRIAL_ID: {trial_id!r} was recorded by {len(found)} sessions "
                          f"({', '.join(s for s, _ in found)}); name one with --session")
    return found[0][0], f"{found[0][1]}:{ARTIFACT_DIR}/{trial_id}.npz"


def download_trial(uri: str, where: str, dest: str | Path) -> Episode:
    run_id, path = where.split(":", 1)
    return Episode.load(_client(uri).download_artifacts(run_id, path, str(dest)))
