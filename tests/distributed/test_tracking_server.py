"""A shared tracking server under a parallel sweep: four sessions at once (joblib) write to one `mlflow server`
(SQLite backend, proxied local artifact root); the server is killed mid-sweep and started again on the same
port and store a few seconds later. With MLflow's own HTTP retries off, the writer's retries alone bridge the
outage: every session completes, no row is lost, no error is left unhandled. Real subprocesses (the CLI, the
server), real MuJoCo stations. Slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.distributed.tracking_server import MlflowServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
JOBS = 4
OUTAGE_S = 4.0


def _journal_trial_ids(run_dir: Path) -> list[str]:
    rows = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines() if line.strip()]
    return sorted(row["record"]["trial_id"] for row in rows if row["kind"] == "trial")


def _mlflow_trial_ids(client: MlflowClient, experiment_id: str, session_id: str) -> list[str]:
    ids = []
    for child in client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{session_id}'", max_results=1000):
        if int(child.data.metrics.get("trials", 0)):
            table = Path(client.download_artifacts(child.info.run_id, "trials.jsonl")).read_text().splitlines()
            ids += [json.loads(line)["trial_id"] for line in table if line.strip()]
    return sorted(ids)


def run_sweep_through_an_outage(server: MlflowServer, tmp_path: Path) -> dict[str, float]:
    """The sweep against `server`, killed and restarted once the sessions write; checks every record arrived."""
    client = MlflowClient(tracking_uri=server.uri)
    # created on the server first, so artifacts go through the server's proxy (mlflow-artifacts:/), not a path
    experiment_id = client.create_experiment("enpire/drawer")
    sweep_dir = tmp_path / "multirun"
    cmd = [sys.executable, "-m", "enpire", "-m", "hydra/launcher=enpire_joblib", f"hydra.launcher.n_jobs={JOBS}",
           "budget=smoke", "budget.iterations=10", "budget.trials=30", "budget.robot_seconds=1000",
           "seed=0,1,2,3", "video.enabled=false", f"tracking.uri={server.uri}",
           f"tracking.artifact_root={tmp_path}/unused-artifacts", f"hydra.sweep.dir={sweep_dir}",
           f"supervision.control_root={tmp_path}/control"]
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    sweep = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outage: dict[str, float] = {}

    def outage_mid_sweep() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and sweep.poll() is None:
            try:
                writing = client.search_runs([experiment_id], "tags.`enpire.kind` = 'iteration'", max_results=1)
            except Exception:  # noqa: BLE001 - the server is busy: ask again
                writing = []
            if writing:
                break
            time.sleep(0.2)
        began = time.monotonic()
        server.kill()
        time.sleep(OUTAGE_S)
        server.start()
        outage["down_s"] = time.monotonic() - began

    watcher = threading.Thread(target=outage_mid_sweep, daemon=True)
    watcher.start()
    _, stderr = sweep.communicate(timeout=480)
    watcher.join(timeout=120)
    assert sweep.returncode == 0, stderr[-3000:]
    assert "down_s" in outage, "the sweep ended before the outage"
    assert "Traceback" not in stderr, stderr[-3000:]

    sessions = client.search_runs([experiment_id], "tags.`enpire.kind` = 'session'")
    assert sorted(s.data.params["seed"] for s in sessions) == ["0", "1", "2", "3"]
    assert all(s.info.status == "FINISHED" for s in sessions)
    # all four at once: every job had begun (Hydra writes a job's .hydra/config.yaml as it starts it) before
    # any session ended. The sessions' own MLflow runs are too short to compare under load (a session may run
    # its trials in ~1 s after a start-up of several seconds that varies by job)
    began = [p.stat().st_mtime * 1000 for p in sweep_dir.glob("*/.hydra/config.yaml")]
    assert len(began) == JOBS and max(began) < min(s.info.end_time for s in sessions)
    job_dirs = {(d / ".hydra" / "overrides.yaml").read_text(): d
                for d in sweep_dir.iterdir() if (d / ".hydra").is_dir()}
    rows = 0
    for session in sessions:
        [run_dir] = [d for text, d in job_dirs.items() if f"seed={session.data.params['seed']}" in text]
        journal, recorded = _journal_trial_ids(run_dir), _mlflow_trial_ids(client, experiment_id, session.info.run_id)
        assert recorded == journal and len(journal) == session.data.metrics["trials"] > 0  # 0 lost, 0 twice
        assert client.list_artifacts(session.info.run_id, "spec")  # artifacts through the server's proxy
        rows += len(journal)
    logs = stderr + "".join(p.read_text() for p in sweep_dir.glob("*/*.log"))
    recovered = logs.count("MLflow store available again")
    assert recovered >= 1, "no write met the outage"  # the writer's retries carried it
    return {"jobs": float(JOBS), "rows": float(rows), "down_s": outage["down_s"], "recovered_writes": float(recovered)}


def test_a_parallel_sweep_survives_a_tracking_server_restart(tmp_path: Path) -> None:
    server = MlflowServer(tmp_path / "server", f"sqlite:///{tmp_path}/server/mlflow.db")
    server.start()
    try:
        figures = run_sweep_through_an_outage(server, tmp_path)
    finally:
        server.stop()
    print(f"\ntracking server (sqlite): {figures}")


def test_the_sweep_survives_a_restart_with_a_postgresql_backend(tmp_path: Path) -> None:
    """The production set-up of docs/distributed.md: PostgreSQL as the server's backend store."""
    from tests.distributed.postgres import Postgres, available

    why_not = available()
    if why_not is not None:
        pytest.skip(f"no PostgreSQL here: {why_not}")
    database = Postgres()
    database.start()
    server = MlflowServer(tmp_path / "server", database.uri)
    try:
        server.start()
        figures = run_sweep_through_an_outage(server, tmp_path)
    finally:
        server.stop()
        database.stop()
    print(f"\ntracking server (postgresql): {figures}")
