"""`python -m enpire agent=claude fleet=2 budget=smoke` end to end against the stand-in API (subprocess).

The session's token count must equal the sum of the `usage` the stand-in returned, MLflow
must show every iteration's hypothesis and tokens and the session's MTU, and no file the
session wrote may hold the API key.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import enpire.loop
from tests.agent.fake_anthropic import FakeMessagesAPI

FAKE_KEY = "sk-ant-api03-FAKE-e2e-key-0123456789abcdef-XYZ"
ROOT = Path(__file__).resolve().parents[2]
LOOP_READY = "NotImplementedError" not in inspect.getsource(enpire.loop.run_session)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not LOOP_READY, reason="the research loop is not implemented yet")]


def run_session(tmp_path: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, FakeMessagesAPI, dict]:
    with FakeMessagesAPI(autopilot=True, seed=1) as api:
        env = {**os.environ, "ANTHROPIC_API_KEY": FAKE_KEY, "ANTHROPIC_BASE_URL": api.url, "MUJOCO_GL": "egl"}
        cmd = [sys.executable, "-m", "enpire", *overrides, "budget=smoke", "video.enabled=false",
               f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifact_root={tmp_path}/artifacts",
               f"hydra.run.dir={tmp_path}/run"]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line and " " not in
                   line.split(": ", 1)[0])
    return proc, api, summary


def mlflow_runs(tmp_path: Path) -> tuple[Any, list[Any]]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("enpire/drawer")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    session = [r for r in runs if r.data.tags.get("enpire.kind") == "session"]
    iterations = [r for r in runs if r.data.tags.get("enpire.kind") == "iteration"]
    assert len(session) == 1
    return session[0], iterations


def assert_key_nowhere(tmp_path: Path, proc: subprocess.CompletedProcess) -> None:
    assert FAKE_KEY not in proc.stdout + proc.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert FAKE_KEY[-20:].encode() not in path.read_bytes(), f"API key written to {path}"


def test_claude_session_end_to_end_accounts_every_token(tmp_path: Path) -> None:
    proc, api, summary = run_session(tmp_path, "agent=claude", "fleet=2")
    assert len(api.message_requests()) >= 2 and all(s.status == 200 for s in api.responses)
    assert int(summary["tokens"]) == api.tokens_returned  # exactly what the API billed
    session, iterations = mlflow_runs(tmp_path)
    assert session.data.metrics["tokens"] == api.tokens_returned
    assert session.data.metrics["mtu"] > 0
    assert iterations and {r.data.tags["enpire.agent"] for r in iterations} <= {"claude-0", "claude-1"}
    sent = [b["input"]["hypothesis"] for s in api.responses for b in s.body["content"] if b["type"] == "tool_use"]
    assert sorted(r.data.tags["enpire.hypothesis"] for r in iterations) == sorted(sent)
    assert all(r.data.metrics["tokens"] > 0 for r in iterations)
    assert sum(r.data.metrics["tokens"] for r in iterations) == api.tokens_returned
    assert_key_nowhere(tmp_path, proc)


def test_mixed_team_tags_each_agent_kind(tmp_path: Path) -> None:
    proc, api, summary = run_session(tmp_path, "team=[claude,search]", "fleet=2")
    _, iterations = mlflow_runs(tmp_path)
    agents = {r.data.tags["enpire.agent"] for r in iterations}
    assert "claude-0" in agents and agents <= {"claude-0", "search-1"}
    assert int(summary["tokens"]) == api.tokens_returned > 0
    assert float(summary["mtu.search-1"]) == 0 and float(summary["mtu.claude-0"]) > 0
    assert_key_nowhere(tmp_path, proc)


def test_a_session_with_videos_shows_claude_stills_and_stores_their_digests(tmp_path: Path) -> None:
    """The shipped defaults (images: 2, video on): later calls carry stills of the session's own trials, the
    iteration's transcript artifact keeps their digests, not their bytes, and every token is still counted."""
    with FakeMessagesAPI(autopilot=True, seed=2) as api:
        env = {**os.environ, "ANTHROPIC_API_KEY": FAKE_KEY, "ANTHROPIC_BASE_URL": api.url, "MUJOCO_GL": "egl"}
        cmd = [sys.executable, "-m", "enpire", "agent=claude", "task=reach", "fleet=2", "budget=small",
               "budget.iterations=12", "budget.tokens=2000000", "video.fps=5", "determinism=strict",
               f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifact_root={tmp_path}/artifacts",
               f"hydra.run.dir={tmp_path}/run"]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    shown = [b for body in api.message_requests() for b in body["messages"][0]["content"]
             if isinstance(body["messages"][0]["content"], list) and b["type"] == "image"]
    assert shown, "no call carried a still"
    digests = []
    for path in (tmp_path / "artifacts").rglob("transcript.json"):
        for entry in json.loads(path.read_text()):
            for message in entry["request"]["messages"]:
                content = message["content"] if isinstance(message["content"], list) else []
                digests += [b["source"]["sha256"] for b in content if b.get("type") == "image"]
                assert not any("data" in b.get("source", {}) for b in content if b.get("type") == "image")
    assert digests and len(digests) == len(shown)
    summary = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert int(summary["tokens"]) == api.tokens_returned
    assert_key_nowhere(tmp_path, proc)
