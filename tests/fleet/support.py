"""Shared helpers of the loop tests: a pre-migrated MLflow store, scripted agents, session runners.

Creating a fresh MLflow SQLite store costs seconds (schema migrations), so one store is
migrated per test session and copied for each test.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from enpire.agent.api import AgentReply, ResearchState
from enpire.loop import SessionContext, run_session
from enpire.records import IterationSummary
from enpire.spec import ExperimentSpec, load_spec
from enpire.track.summary import parse

FAST = ["task=drawer", "executor=inline", "video.enabled=false", "fleet=1"]


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow-template")
    MlflowClient(tracking_uri=f"sqlite:///{folder}/mlflow.db").search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def store(migrated_store: Path, tmp_path: Path) -> list[str]:
    """Overrides pointing a session at a private copy of the migrated store."""
    shutil.copy(migrated_store, tmp_path / "mlflow.db")
    return [f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifact_root={tmp_path}/artifacts"]


def run(spec: ExperimentSpec, run_dir: Path, **kwargs: Any) -> tuple[int, dict[str, str], str]:
    """Run a session in-process; (exit code, parsed summary, printed text)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = run_session(spec, SessionContext(run_dir=str(run_dir)), live=False, **kwargs)
    text = buf.getvalue()
    return code, parse(text), text


def spec_of(*overrides: str) -> ExperimentSpec:
    return load_spec([*FAST, *overrides])


class ScriptedAgent:
    """Sends the given proposals in order, then repeats the last; records what it observed."""

    def __init__(self, proposals: list[Any], name: str = "scripted-0", tokens: int = 0) -> None:
        self.name = name
        self.branch = name
        self.proposals = list(proposals)
        self.tokens = tokens
        self.observed: list[IterationSummary] = []
        self.states: list[ResearchState] = []

    def propose(self, state: ResearchState) -> AgentReply:
        self.states.append(state)
        proposal = self.proposals.pop(0) if len(self.proposals) > 1 else self.proposals[0]
        return AgentReply(proposal=proposal, tokens_in=self.tokens, tokens_out=0)

    def observe(self, result: IterationSummary) -> None:
        self.observed.append(result)


def params_proposal(spec: ExperimentSpec, trials: int = 2, **changes: float) -> dict[str, Any]:
    params = {**spec.policy.defaults(), **changes}
    return {"hypothesis": "Evaluate the default drawer recipe as a scripted test.", "parent": None,
            "trials": trials, "candidate": {"kind": "params", "params": params}}
