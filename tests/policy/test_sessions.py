"""End-to-end sessions with policy=bc and policy=code on drawer (real loop, real stations, MLflow on SQLite).

The two `python -m enpire` sessions are the user's commands (docs/policies.md); the in-process
one drives a code session with a scripted agent to show a crashing source comes back to the
agent with its traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from enpire.track.summary import parse
from tests.fleet.support import ScriptedAgent, migrated_store, run, spec_of, store

__all__ = ["migrated_store", "store"]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples/policies/drawer_policy.py"


def session(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "enpire", "task=drawer", "budget=smoke", "video.enabled=false",
           f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifact_root={tmp_path}/artifacts",
           f"hydra.run.dir={tmp_path}/run", *overrides]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def iteration_runs(tmp_path: Path, session_id: str) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_run(session_id).info.experiment_id
    return client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{session_id}'")


def artifacts_of(tmp_path: Path, run_id: str) -> set[str]:
    root = next((tmp_path / "artifacts").glob(f"*/{run_id}/artifacts"))
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_code_session_from_user_file(tmp_path: Path) -> None:
    out = session(tmp_path, "policy=code", f"policy.source={EXAMPLE.relative_to(REPO)}")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = parse(out.stdout)
    assert int(summary["trials"]) > 0 and int(summary["crashes"]) == 0
    assert float(summary["best_success_rate"]) > 0.0  # the worked example really opens the drawer
    runs = iteration_runs(tmp_path, summary["session_id"])
    assert runs and all(r.data.tags["enpire.candidate_kind"] == "code" for r in runs)
    source = EXAMPLE.read_text()
    rows = []
    for r in runs:
        assert {"candidate.py", "trials.jsonl"} <= artifacts_of(tmp_path, r.info.run_id)
        root = next((tmp_path / "artifacts").glob(f"*/{r.info.run_id}/artifacts"))
        assert (root / "candidate.py").read_text() == source  # the user's file is the candidate, unchanged
        rows += [json.loads(line) for line in (root / "trials.jsonl").read_text().splitlines()]
    # the sandboxed file really drove the robot: the drawer moved, and the verifier judged every trial
    assert max(row["final_state"]["drawer_opening"] for row in rows) > 0.1
    assert {row["outcome"] for row in rows} <= {"success", "failure", "unsafe"}


@pytest.mark.slow
def test_bc_session(tmp_path: Path) -> None:
    out = session(tmp_path, "policy=bc", "policy.train.demos=6", "policy.train.epochs=5", "policy.train.online=none")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = parse(out.stdout)
    assert int(summary["trials"]) > 0
    assert 0 < float(summary["trainer_seconds"]) <= 20.0 + 10.0  # smoke cap; at most one job past it
    assert 0 < float(summary["trainer_utilization"]) <= 1.0
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    metrics = client.get_run(summary["session_id"]).data.metrics
    assert metrics["trainer_seconds"] == pytest.approx(float(summary["trainer_seconds"]), abs=1e-3)
    trained = [r for r in iteration_runs(tmp_path, summary["session_id"])
               if "checkpoint/bc.ckpt" in artifacts_of(tmp_path, r.info.run_id)]
    assert trained, "the checkpoint should be an artifact of its iteration"
    for r in trained:  # training logged into the same run that holds the iteration's trial table
        assert r.data.metrics["train_trainer_seconds"] > 0 and "trials.jsonl" in artifacts_of(tmp_path, r.info.run_id)
        assert r.data.tags["enpire.kind"] == "iteration" and r.data.tags["enpire.candidate_kind"] == "bc"


CRASHES = "def make_policy():\n    return Bad()\n\nclass Bad:\n    def reset(self, obs, feedback):\n        pass\n\n" \
          "    def act(self, obs):\n        raise RuntimeError('gripper map missing')\n"


def test_a_crashing_code_candidate_is_a_crash_iteration_whose_traceback_reaches_the_agent(
        store: list[str], tmp_path: Path) -> None:
    # screen.dry_check=false: the dry check would reject it before any trial (tests/fleet/test_twin.py)
    spec = spec_of(*store, "policy=code", "budget=smoke", "budget.iterations=2", "screen.dry_check=false")
    proposal = {"hypothesis": "A policy whose act() raises, as a scripted test.", "parent": None, "trials": 1,
                "candidate": {"kind": "code", "source": CRASHES}}
    agent = ScriptedAgent([proposal])
    code, summary, _ = run(spec, tmp_path, agents=[agent])
    assert code == 0
    first = agent.observed[0]
    assert first.decision == "crash" and first.trials == 1
    assert "gripper map missing" in first.failures[0]["error"]  # the traceback goes back to the agent
    runs = iteration_runs(tmp_path, summary["session_id"])
    root = next((tmp_path / "artifacts").glob(f"*/{runs[0].info.run_id}/artifacts"))
    assert (root / "candidate.py").read_text() == CRASHES
    row = json.loads((root / "trials.jsonl").read_text().splitlines()[0])
    assert row["outcome"] == "crash" and "gripper map missing" in row["error"]
