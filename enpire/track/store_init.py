"""Create an MLflow SQLite store once, safely, before concurrent sessions write to it.

MLflow creates and migrates a SQLite database on first use; several processes doing that at
once (a joblib sweep) race on `ALTER TABLE` and fail. A file lock beside the database makes
the first-use initialisation happen exactly once; afterwards SQLite's own locking suffices.
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def ensure_store(uri: str) -> None:
    """Make sure the store at `uri` exists and is migrated (no-op for non-SQLite stores)."""
    path = sqlite_path(uri)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            from mlflow.tracking import MlflowClient

            from enpire.track.retry import with_retry

            # a store another process holds locked at start is waited for like one locked mid-session
            with_retry(lambda: MlflowClient(tracking_uri=uri).search_experiments(max_results=1))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
