"""determinism=strict: the same spec and seed give the same session, record for record, read from MLflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from enpire.spec import load_spec
from tests.fleet.support import run

# What a trial record says about the robot and the candidate; station and wall times say how it was scheduled.
TIMING_FIELDS = {"station", "wall_s", "started_at", "ended_at", "video_artifact", "replay", "duration_s"}


def session_records(uri: str, session_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(iterations, trials) of a session as MLflow holds them, cancelled iterations left out, in index order."""
    client = MlflowClient(tracking_uri=uri)
    session = client.get_run(session_id)
    children = client.search_runs([session.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{session_id}'", max_results=5000)
    iterations, trials = [], []
    for child in sorted(children, key=lambda r: int(r.data.tags["enpire.iteration"])):
        tags, metrics = child.data.tags, child.data.metrics
        if tags["enpire.decision"] == "cancelled":
            continue
        candidate = json.loads(Path(client.download_artifacts(child.info.run_id, "candidate.json")).read_text())
        iterations.append({"agent": tags["enpire.agent"], "parent": tags["enpire.parent_iteration"],
                           "decision": tags["enpire.decision"], "hypothesis": tags["enpire.hypothesis"],
                           "candidate": candidate, **{k: metrics[k] for k in ("success_rate", "pass_at_k", "trials",
                                                                                "safety_stops", "robot_seconds")},
                           "twin": tags.get("enpire.twin"), "reason": tags["enpire.reason"],
                           **{k: metrics[k] for k in ("twin_trials", "twin_success_rate") if k in metrics}})
        if int(metrics["trials"]):
            rows = Path(client.download_artifacts(child.info.run_id, "trials.jsonl")).read_text().splitlines()
            trials.extend({k: v for k, v in json.loads(row).items() if k not in TIMING_FIELDS} for row in rows)
    return iterations, sorted(trials, key=lambda t: t["trial_id"])


def strict_session(tmp_path: Path, name: str, *overrides: str) -> tuple[dict[str, str], list, list]:
    uri = f"sqlite:///{tmp_path}/{name}.db"
    spec = load_spec(["task=drawer", "fleet=2", "seed=0", "video.enabled=false", "determinism=strict",
                      f"tracking.uri={uri}", f"tracking.artifact_root={tmp_path}/{name}-artifacts", *overrides])
    code, summary, _ = run(spec, tmp_path / name)
    assert code == 0
    iterations, trials = session_records(uri, summary["session_id"])
    return summary, iterations, trials


# slow (16 s: two sessions with station processes): in CI's slow run, keeping `make test` under ten minutes
@pytest.mark.slow
def test_two_seed_0_sessions_at_fleet_2_are_equal_record_for_record(tmp_path: Path) -> None:
    first, its_a, trials_a = strict_session(tmp_path, "a")
    second, its_b, trials_b = strict_session(tmp_path, "b")
    assert first["determinism"] == "strict"
    assert first["reached_done"] == second["reached_done"] == "true"
    assert len(its_a) > 10 and len(trials_a) > 20  # a real search, several iterations in flight at once
    assert its_a == its_b
    assert trials_a == trials_b
    for key in ("iterations", "best_success_rate", "kept", "best_candidate", "robot_s_to_done", "tokens_to_done"):
        assert first[key] == second[key], key
    # the totals also count trials of iterations cancelled at /done (how many ran before the stop is timing)
    assert int(first["trials"]) - int(first["cancelled_trials"]) == int(second["trials"]) - int(
        second["cancelled_trials"]) == len(trials_a)


@pytest.mark.slow
def test_strict_sessions_on_ray_equal_local_ones(tmp_path: Path) -> None:
    _, its_local, trials_local = strict_session(tmp_path, "local")
    _, its_ray, trials_ray = strict_session(tmp_path, "ray", "executor=ray")
    assert its_local == its_ray
    assert trials_local == trials_ray


@pytest.mark.slow
def test_strict_sessions_with_batches_of_proposals_are_equal_record_for_record(tmp_path: Path) -> None:
    # each call screens 3 candidates (agent.batch=3): the call layout is fixed, so the seed still fixes everything
    _, its_a, trials_a = strict_session(tmp_path, "a", "agent.batch=3")
    _, its_b, trials_b = strict_session(tmp_path, "b", "agent.batch=3")
    assert its_a == its_b and trials_a == trials_b
    assert [it["agent"] for it in its_a[:6]] == ["search-0"] * 3 + ["search-1"] * 3  # one call, three iterations


# slow (two sessions with station and twin processes)
@pytest.mark.slow
def test_two_seed_0_sessions_with_a_twin_and_perturbed_dynamics_are_equal_record_for_record(tmp_path: Path) -> None:
    twin = ("screen.twin=sim", "dynamics=perturbed", "screen.stations=2")
    first, its_a, trials_a = strict_session(tmp_path, "a", *twin)
    second, its_b, trials_b = strict_session(tmp_path, "b", *twin)
    assert int(first["twin_rejected"]) > 0 and int(first["twin_candidates"]) > int(first["twin_rejected"])
    assert first["twin_trials"] == second["twin_trials"] and first["twin_rejected"] == second["twin_rejected"]
    assert any(it["twin"] == "screened_out" and it["decision"] == "rejected" for it in its_a)
    assert any(it["twin"] == "passed" and it["trials"] > 0 for it in its_a)
    assert its_a == its_b  # twin verdicts and figures included
    assert trials_a == trials_b
