"""Shared helpers of the reliability tests: real `python -m enpire` subprocesses, kills, read-backs, figures.

Other reliability tests (operator control, injected faults) use the same runner and add their
own figures with `add_figure`; `tests/reliability/conftest.py` prints every figure at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# Figures shown in the terminal summary. Known names (others are printed too):
# "kills survived", "trials lost", "duplicates", "faults injected", "faults survived", "bad inputs tried".
FIGURES: Counter[str] = Counter()


def add_figure(name: str, amount: float = 1) -> None:
    FIGURES[name] += amount


def session_env() -> dict[str, str]:
    return {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "PYTHONUNBUFFERED": "1"}


@dataclass
class Store:
    """A private MLflow store for one test (SQLite + artifact folder)."""

    root: Path

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.root}/mlflow.db"

    def overrides(self) -> list[str]:
        return [f"tracking.uri={self.uri}", f"tracking.artifact_root={self.root}/artifacts"]

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def session_ids(self) -> list[str]:
        client = self.client()
        ids = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(ids, filter_string="tags.`enpire.kind` = 'session'") if ids else []
        return [r.info.run_id for r in runs]


@dataclass
class SessionProcess:
    """One `python -m enpire ...` in its own process group (so stations it forked can be cleaned up)."""

    run_dir: Path
    args: list[str]
    proc: subprocess.Popen[str] = field(init=False)

    def __post_init__(self) -> None:
        self.run_dir.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "enpire", *self.args, f"hydra.run.dir={self.run_dir}"]
        self.log = (self.run_dir.parent / f"{self.run_dir.name}.log").open("w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=session_env(), stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, start_new_session=True)

    def journal_trials(self) -> list[str]:
        return journal_trial_ids(self.run_dir / "journal.jsonl")

    def wait_for_trials(self, n: int, timeout: float = 240.0, journal: Path | None = None) -> list[str]:
        """Block until the journal holds at least n trials; returns their ids."""
        path = journal or self.run_dir / "journal.jsonl"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = journal_trial_ids(path)
            if len(ids) >= n:
                return ids
            if self.proc.poll() is not None:
                raise AssertionError(f"session ended (rc {self.proc.returncode}) before {n} trials: {self.stderr()}")
            time.sleep(0.05)
        raise AssertionError(f"fewer than {n} trials in {path} after {timeout} s")

    def sigkill(self) -> None:
        """kill -9 of the runner, then of what it left behind (station workers of its process group)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        time.sleep(0.2)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()

    def finish(self, timeout: float = 480.0) -> tuple[int, dict[str, str]]:
        from enpire.track.summary import parse

        try:
            out, _ = self.proc.communicate(timeout=timeout)
        finally:
            self.log.close()
        return self.proc.returncode, parse(out or "")

    def stderr(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.run_dir.parent / f"{self.run_dir.name}.log").read_text()[-3000:]


def journal_trial_ids(path: Path) -> list[str]:
    from enpire.track.atomic import read_lines

    return [d["trial_id"] for d in read_lines(path) if d.get("kind") == "trial"]


@dataclass
class ReadBack:
    """A session as MLflow holds it: trial rows of live iteration runs, iteration documents, session run."""

    rows: list[dict[str, Any]]
    docs: list[dict[str, Any]]
    metrics: dict[str, float]
    tags: dict[str, str]
    status: str
    child_statuses: dict[str, str]

    @property
    def trial_ids(self) -> list[str]:
        return [r["trial_id"] for r in self.rows]

    @property
    def duplicates(self) -> int:
        return len(self.trial_ids) - len(set(self.trial_ids))

    def lost(self, recorded: list[str]) -> int:
        return len(set(recorded) - set(self.trial_ids))


def read_back(store: Store, session_id: str) -> ReadBack:
    client = store.client()
    session = client.get_run(session_id)
    children = client.search_runs([session.info.experiment_id], max_results=5000,
                                  filter_string=f"tags.mlflow.parentRunId = '{session_id}'")
    rows, docs, statuses = [], [], {}
    for child in children:
        statuses[child.info.run_id] = child.info.status
        if child.data.tags.get("enpire.kind") != "iteration":
            continue
        target = store.root / "readback" / child.info.run_id
        folder = Path(client.download_artifacts(child.info.run_id, "", str(target)))
        docs.append(json.loads((folder / "iteration.json").read_text()))
        rows += [json.loads(x) for x in (folder / "trials.jsonl").read_text().splitlines() if x.strip()]
    return ReadBack(rows, docs, dict(session.data.metrics), dict(session.data.tags), session.info.status, statuses)
