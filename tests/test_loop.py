"""The research loop on real stations: rejected proposals, integrity breach, MLflow = printed summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from enpire import PROJECT_ROOT
from enpire.spec import fingerprint
from tests.fleet.support import ScriptedAgent, migrated_store, params_proposal, run, spec_of, store

__all__ = ["migrated_store", "store"]


def test_out_of_schema_and_done_touching_proposals_are_rejected_and_the_agent_is_told(
        store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=3")
    too_far = params_proposal(spec, pull_distance=9.0)
    sneaky = {**params_proposal(spec), "done": {"goal": {"min_success_rate": 0.1}}}
    agent = ScriptedAgent([too_far, sneaky, params_proposal(spec, trials=2)])
    code, summary, _ = run(spec, tmp_path, agents=[agent])
    assert code == 0
    decisions = [it.decision for it in agent.observed]
    assert decisions[:2] == ["rejected", "rejected"]
    assert "proposal.candidate.params.pull_distance" in agent.observed[0].reason
    assert "9.0" in agent.observed[0].reason
    assert agent.observed[1].reason.startswith("proposal.done")
    assert agent.observed[2].decision != "rejected" and agent.observed[2].trials == 2
    assert summary["rejected"] == "2" and summary["trials"] == "2"
    client = MlflowClient(tracking_uri=spec.tracking.uri)
    runs = client.search_runs([client.get_run(summary["session_id"]).info.experiment_id],
                              filter_string="tags.`enpire.decision` = 'rejected'")
    assert len(runs) == 2
    assert all(int(r.data.metrics["trials"]) == 0 for r in runs)


def test_integrity_breach_mid_session_exits_3_and_tags_the_run(
        store: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = tmp_path / "verifier_copy.py"
    shutil.copy(PROJECT_ROOT / "enpire/world/verifier.py", verifier)
    monkeypatch.setattr(fingerprint, "DONE_SOURCES", (str(verifier),))  # the done fingerprint now covers the copy
    spec = spec_of(*store, "budget=smoke", "budget.iterations=10")

    def tamper(_summary: object) -> None:
        verifier.write_text(verifier.read_text() + "\n# success is whatever I say\n")

    agent = ScriptedAgent([params_proposal(spec, trials=1)])
    code, summary, _ = run(spec, tmp_path, agents=[agent], on_iteration=tamper)
    assert code == 3
    assert summary["stopped_by"] == "integrity_breach: done"
    assert summary["iterations"] == "1"  # no iteration started after the change
    run_info = MlflowClient(tracking_uri=spec.tracking.uri).get_run(summary["session_id"])
    assert run_info.info.status == "FAILED"
    assert run_info.data.tags["enpire.integrity_breach"] == "done"


def test_mlflow_records_equal_the_printed_summary(store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=3", "budget.trials=10", "agent.trials_per_candidate=3",
                   "agent.reevaluate_trials=3")
    code, summary, text = run(spec, tmp_path)  # the offline search agent of the spec
    assert code == 0
    for key in ("session_id", "reached_done", "best_success_rate", "iterations", "trials", "robot_seconds",
                "tokens", "wall_s", "mru", "mtu", "mlflow_run_id", "stopped_by"):
        assert f"\n{key}: " in "\n" + text, key
    client = MlflowClient(tracking_uri=spec.tracking.uri)
    session = client.get_run(summary["mlflow_run_id"])
    tags, metrics = session.data.tags, session.data.metrics
    assert tags["enpire.kind"] == "session"
    assert tags["enpire.done_sha256"] == spec.fingerprints.done_sha256
    assert tags["enpire.safety_sha256"] == spec.fingerprints.safety_sha256
    assert tags["enpire.spec_sha256"] == spec.fingerprints.spec_sha256
    assert tags["enpire.stopped_by"] == summary["stopped_by"]
    assert session.data.params["task.name"] == "drawer"
    assert session.data.params["budget.trials"] == "10"
    for key in ("iterations", "trials", "robot_seconds", "best_success_rate", "mru", "mtu", "tokens", "wall_s"):
        assert metrics[key] == pytest.approx(float(summary[key]), abs=1e-3), key
    assert session.info.status == "FINISHED"
    experiment = client.get_experiment(session.info.experiment_id)
    assert experiment.name == "enpire/drawer"
    children = client.search_runs([experiment.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{summary['session_id']}'")
    assert len(children) == int(summary["iterations"])
    total_trials = 0
    for child in children:
        t = child.data.tags
        assert t["enpire.kind"] == "iteration" and t["enpire.decision"] in ("keep", "discard", "crash", "unsafe")
        assert t["enpire.agent"] == "search-0" and t["enpire.branch"] == "search-0" and len(t["enpire.hypothesis"]) > 8
        for m in ("success_rate", "pass_at_1", "pass_at_k", "trials", "safety_stops", "robot_seconds", "tokens"):
            assert m in child.data.metrics
        candidate = json.loads(Path(client.download_artifacts(child.info.run_id, "candidate.json")).read_text())
        assert set(candidate["params"]) == {p.name for p in spec.policy.params}
        rows = Path(client.download_artifacts(child.info.run_id, "trials.jsonl")).read_text().splitlines()
        assert len(rows) == int(child.data.metrics["trials"])
        for row in map(json.loads, rows):
            assert {"station", "seed", "outcome", "wall_s", "safety_events", "video_artifact"} <= set(row)
        total_trials += len(rows)
    assert total_trials == int(summary["trials"])
    tree = json.loads(Path(client.download_artifacts(session.info.run_id, "idea_tree.json")).read_text())
    assert [it["index"] for it in tree["iterations"]] == list(range(int(summary["iterations"])))
