"""MLflow as researchers expect it: named runs, real durations, descriptions, trial tables, source tags,
rounded metrics, per-trial steps, and confirmed success in the summary."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service import utils as tracking_utils

from enpire.records import IterationSummary
from enpire.track.confidence import wilson
from enpire.track.writer import Tracker
from tests.fleet.support import ScriptedAgent, migrated_store, params_proposal, run, spec_of, store

__all__ = ["migrated_store", "store"]

TUNED = {"approach_height": 0.057441, "grasp_depth": 0.011348, "grasp_height": 0.011018, "grip_close": 0.799545,
         "pull_distance": 0.22195, "pull_speed": 0.232544}  # a drawer recipe a search session kept


@pytest.fixture
def session(store: list[str], tmp_path: Path) -> tuple[MlflowClient, dict[str, str], list]:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=3", "fleet=1")
    first = params_proposal(spec, trials=4, **TUNED)
    again = {**params_proposal(spec, trials=4, **TUNED), "parent": 0,
             "hypothesis": "Re-evaluate the tuned recipe with 4 more trials before trusting it."}
    agent = ScriptedAgent([first, params_proposal(spec, pull_distance=9.0), again])
    code, summary, _ = run(spec, tmp_path / "run", agents=[agent])
    assert code == 0
    client = MlflowClient(tracking_uri=spec.tracking.uri)
    parent = client.get_run(summary["session_id"])
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return client, summary, sorted(children, key=lambda r: int(r.data.tags["enpire.iteration"]))


def test_session_run_is_named_described_and_sourced(session) -> None:  # noqa: ANN001
    client, summary, _ = session
    run = client.get_run(summary["session_id"])
    # the overrides that changed something, each key once (fleet=1 was given twice), no store path
    assert run.info.run_name == "task=drawer executor=inline budget=smoke budget.iterations=3 fleet=1"
    tags = run.data.tags
    assert tags["mlflow.user"] and tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.source.name"]
    if "mlflow.source.git.commit" in tags:  # a git checkout (not an installed package)
        assert len(tags["mlflow.source.git.commit"]) == 40 and tags["enpire.git.dirty"] in ("true", "false")
    assert "**drawer**" in tags["mlflow.note.content"] and "budget=smoke" in tags["mlflow.note.content"]
    assert not [k for k in run.data.params if k.endswith((".description", ".notes"))]
    spec_doc = json.loads(Path(client.download_artifacts(run.info.run_id, "spec/resolved_spec.json")).read_text())
    assert spec_doc["task"]["description"]  # prose lives in the spec artifact
    table = json.loads(Path(client.download_artifacts(run.info.run_id, "iterations_table.json")).read_text())
    assert [row[0] for row in table["data"]] == [0, 1, 2] and "candidate_success_lcb" in table["columns"]


def test_confirmed_success_in_the_summary_and_the_session_metrics(session) -> None:  # noqa: ANN001
    client, summary, _ = session
    s, n = int(summary["best_success_successes"]), int(summary["best_success_trials"])
    assert n >= 3 and float(summary["best_success_rate"]) == pytest.approx(s / n, abs=1e-4)
    assert float(summary["best_success_lcb"]) == pytest.approx(wilson(s, n)[0], abs=1e-4)
    assert float(summary["best_success_lcb"]) < float(summary["best_success_rate"])
    assert float(summary["best_pass_at_1_lcb"]) <= float(summary["best_pass_at_1"])
    assert float(summary["best_pass_at_k_lcb"]) <= float(summary["best_pass_at_k"])
    metrics = client.get_run(summary["session_id"]).data.metrics
    assert metrics["best_success_lcb"] == pytest.approx(float(summary["best_success_lcb"]))
    for value in metrics.values():
        assert value == round(value, 4)  # rounded, not 0.9615384615384616
    steps = client.get_metric_history(summary["session_id"], "trial/success")
    assert sorted(m.step for m in steps) == list(range(1, int(summary["trials"]) + 1))  # one step per trial
    robot = sorted(client.get_metric_history(summary["session_id"], "trial/cum_robot_seconds"), key=lambda m: m.step)
    assert robot[-1].value == pytest.approx(float(summary["robot_seconds"]), abs=0.01)
    assert all(a.value <= b.value for a, b in itertools.pairwise(robot))
    lcb = client.get_metric_history(summary["session_id"], "trial/best_success_lcb")
    assert max(m.value for m in lcb) <= max(m.value for m in steps)


def test_iteration_runs_have_descriptions_and_trial_tables(session, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    client, _, children = session
    assert [c.data.tags["enpire.decision"] for c in children][1] == "rejected"
    judged = [c for c in children if c.data.tags["enpire.decision"] != "rejected"]
    for child in children:
        assert child.data.tags["mlflow.note.content"].startswith(child.data.tags["enpire.hypothesis"][:200])
        assert json.loads(child.data.tags["mlflow.loggedArtifacts"]) == [{"path": "trials_table.json",
                                                                          "type": "table"}]
    # load_table searches through the fluent API's store: point it at this one for this test only
    monkeypatch.setattr(tracking_utils, "_tracking_uri", client.tracking_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    for child in judged:
        rows = [json.loads(line) for line in
                Path(client.download_artifacts(child.info.run_id, "trials.jsonl")).read_text().splitlines()]
        table = client.load_table(child.info.experiment_id, "trials_table.json", run_ids=[child.info.run_id])
        assert list(table["trial_id"]) == [r["trial_id"] for r in rows] and len(rows) == 4
        assert list(table["success"]) == [r["pass_at_1"] for r in rows]
        m = child.data.metrics
        assert m["pass_at_1_lcb"] <= m["pass_at_1"] and m["pass_at_k_lcb"] <= m["pass_at_k"]
        assert m["candidate_success_lcb"] <= m["candidate_success_rate"]


def test_an_iteration_run_lasts_from_its_proposal_to_its_close(store: list[str]) -> None:
    spec = spec_of(*store, "budget=smoke")
    tracker = Tracker(spec, None, None, {})
    it = IterationSummary(index=0, agent="a", branch="a", parent=None, hypothesis="h", candidate={"kind": "params",
                          "params": {}}, candidate_id="c", decision="discard", success_rate=0.0, pass_at_1=0.0,
                          pass_at_k=0.0, trials=0, safety_stops=0, robot_seconds=0.0, tokens=0)
    queued = time.monotonic() - 2.5
    tracker.log_iteration(it, [], False, started=queued)
    tracker.log_iteration(IterationSummary(**{**it.__dict__, "index": 1}), [], False)  # not given: starts at its end
    tracker.close({}, 1, {}, [], "", "FINISHED")
    runs = {int(r.data.tags["enpire.iteration"]): r for r in tracker.client.search_runs(
        [tracker.experiment_id], filter_string="tags.`enpire.kind` = 'iteration'")}
    took = runs[0].info.end_time - runs[0].info.start_time
    assert 2400 <= took <= 4000  # queued 2.5 s before its close: a real duration, start < end
    assert runs[1].info.end_time >= runs[1].info.start_time
