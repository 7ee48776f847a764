"""A session on executor=ray records what the same session on executor=local records.

Real sessions (MuJoCo stations, offline search agent, MLflow on SQLite); the ray session starts
and stops its own local Ray instance as a user's would. Slow: Ray start-up plus two sessions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from enpire.loop import SessionContext, run_session
from enpire.spec import load_spec
from enpire.track.store_init import ensure_store

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

DECISIONS = {"keep", "discard", "crash", "unsafe", "rejected"}


def _session(tmp_path: Path, kind: str) -> int:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    ensure_store(uri)
    spec = load_spec(["task=drawer", "fleet=2", "agents=1", "budget=smoke", "video.enabled=false",
                      f"executor={kind}", f"tracking.uri={uri}", f"tracking.artifact_root={tmp_path}/artifacts",
                      f"session.name={kind}"])
    return run_session(spec, SessionContext(run_dir=str(tmp_path / kind)), live=False)


def _recorded(client: MlflowClient, exp: str, name: str) -> dict:
    [session] = client.search_runs([exp], f"tags.`enpire.kind` = 'session' and attributes.run_name = '{name}'")
    iterations = client.search_runs([exp], f"tags.`enpire.session` = '{session.info.run_id}'")
    its = {}
    for run in iterations:
        path = client.download_artifacts(run.info.run_id, "trials.jsonl")
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        its[int(run.data.tags["enpire.iteration"])] = (run, rows)
    return {"session": session, "iterations": its}


def test_ray_session_records_like_a_local_session(tmp_path: Path) -> None:
    assert _session(tmp_path, "local") == 0
    assert _session(tmp_path, "ray") == 0
    assert not ray.is_initialized()  # the session started its own Ray instance and shut it down

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("enpire/drawer").experiment_id
    local, remote = _recorded(client, exp, "local"), _recorded(client, exp, "ray")
    ls, rs = local["session"].data, remote["session"].data

    # the same session record: tags, metrics, the spec as params (executor keys aside), the frozen /done
    assert set(ls.tags) == set(rs.tags) and set(ls.metrics) == set(rs.metrics)
    assert {k for k in ls.params if not k.startswith("executor.")} == \
           {k for k in rs.params if not k.startswith("executor.")}
    assert rs.params["executor.kind"] == "ray"
    assert ls.tags["enpire.done_sha256"] == rs.tags["enpire.done_sha256"]
    assert rs.metrics["trials"] > 0

    # the same ledger: every trial charged once, in an iteration's trial table
    for side in (local, remote):
        its = side["iterations"]
        assert its and sorted(its) == list(range(len(its)))
        rows = [r for _, (_, table) in sorted(its.items()) for r in table]
        assert len(rows) == side["session"].data.metrics["trials"]
        assert len({r["trial_id"] for r in rows}) == len(rows)
        assert all(r["outcome"] != "crash" for r in rows)
        assert sum(r["robot_seconds"] for r in rows) == pytest.approx(side["session"].data.metrics["robot_seconds"],
                                                                      rel=1e-6, abs=1e-6)
        for run, table in its.values():
            assert run.data.tags["enpire.decision"] in DECISIONS
            assert run.data.metrics["trials"] == len(table)

    # the same iteration record, and the same physics: trial seeds are a function of the session seed
    (lrun, ltable), (rrun, rtable) = local["iterations"][0], remote["iterations"][0]
    assert set(lrun.data.tags) == set(rrun.data.tags) and set(lrun.data.metrics) == set(rrun.data.metrics)
    assert lrun.data.params == rrun.data.params  # the first candidate
    lrows, rrows = {r["trial_id"]: r for r in ltable}, {r["trial_id"]: r for r in rtable}
    shared = sorted(set(lrows) & set(rrows))
    assert shared
    for tid in shared:
        assert (lrows[tid]["seed"], lrows[tid]["outcome"]) == (rrows[tid]["seed"], rrows[tid]["outcome"])
        assert lrows[tid]["robot_seconds"] == pytest.approx(rrows[tid]["robot_seconds"])
    if set(lrows) == set(rrows):
        assert lrun.data.tags["enpire.decision"] == rrun.data.tags["enpire.decision"]
