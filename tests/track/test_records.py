"""The MLflow layout's pure parts: flattened spec params, iteration tags, trial rows valid against specs/."""

from __future__ import annotations

import pytest

from enpire.records import IterationSummary, SafetyEvent, TrialRecord
from enpire.spec import load_spec
from enpire.spec.schemas import load_schema, problems_with, validator_for_schema
from enpire.track.confidence import wilson
from enpire.track.records import (
    changed_overrides,
    flatten,
    iteration_metrics,
    iteration_tags,
    label,
    rounded,
    session_run_name,
    trial_row,
    trial_table,
)


def test_flattened_spec_has_one_string_param_per_leaf() -> None:
    spec = load_spec(["task=drawer", "fleet=3"])
    params = flatten(spec.as_dict())
    assert params["fleet"] == "3" and params["task.name"] == "drawer"
    assert params["done.goal.window"] == str(spec.done.window)
    assert params["robot.base_pos"].startswith("[")  # lists as JSON text
    assert all(isinstance(v, str) and len(v) <= 6000 for v in params.values())


def test_iteration_tags_name_parent_decision_and_sweep() -> None:
    it = IterationSummary(index=4, agent="search-1", branch="search-1", parent=None, hypothesis="h" * 9000,
                          candidate={"kind": "params", "params": {"a": 1.0}}, candidate_id="c1", decision="keep",
                          success_rate=0.5, pass_at_1=0.5, pass_at_k=0.75, trials=8, safety_stops=0,
                          robot_seconds=30.0, tokens=0, borrowed_from="search-0")
    tags = iteration_tags(it, raised_best=True, sweep="outputs/multirun/x")
    assert tags["enpire.parent_iteration"] == "none" and tags["enpire.decision"] == "keep"
    assert tags["enpire.borrowed_from"] == "search-0" and tags["enpire.sweep"] == "outputs/multirun/x"
    assert len(tags["enpire.hypothesis"]) == 5000  # truncated to fit an MLflow tag


def test_trial_rows_are_trial_records_plus_where_their_files_went() -> None:
    record = TrialRecord(trial_id="i0001-t002", iteration=1, station=3, seed=17, outcome="unsafe", attempts=1,
                         success_attempt=None, pass_at_1=False, pass_at_k=False, robot_seconds=1.5, wall_s=0.2,
                         steps=30, clamps=2, safety_events=[SafetyEvent("workspace", 29, 0.9, 0.8, "ee left box")],
                         final_state={"drawer_opening": 0.01}, reason="safety stop")
    row = trial_row(record, "c123", "videos/i0001-t002.mp4")
    assert row["candidate_id"] == "c123" and row["video_artifact"] == "videos/i0001-t002.mp4"
    assert row["safety_events"][0]["kind"] == "workspace"
    core = {k: v for k, v in row.items() if k not in ("candidate_id", "video_artifact", "reason")}
    assert problems_with(validator_for_schema(load_schema("trial")), core, prefix="trial") == []


def _summary(**kw: object) -> IterationSummary:
    base = dict(index=4, agent="search-1", branch="search-1", parent=2, hypothesis="Raise grip_close 0.6->0.8: "
                "the handle slipped in 3 of 4 failures, so a firmer grip should hold it through the pull.",
                candidate={"kind": "params", "params": {"a": 1.0}}, candidate_id="c1", decision="keep",
                success_rate=0.75, pass_at_1=0.75, pass_at_k=1.0, trials=4, safety_stops=0, robot_seconds=30.0,
                tokens=0, reason="pooled 3/4 beats the reference 0/4", candidate_trials=4, candidate_success_rate=0.75)
    base.update(kw)
    return IterationSummary(**base)  # type: ignore[arg-type]


def test_prose_stays_out_of_params_but_every_setting_is_there() -> None:
    spec = load_spec(["task=drawer"])
    params = flatten(spec.as_dict())
    assert not [k for k in params if k.rsplit(".", 1)[-1] in ("description", "notes")]
    assert "task.description" not in params and "policy.params.grip_close.description" not in params
    assert params["policy.params.grip_close.high"] == "1.0"  # the numbers of the same entries stay
    assert "task.description" in flatten(spec.as_dict(), prose=True)  # the spec artifact keeps them whole


def test_run_names_come_from_the_session_name_or_the_changed_overrides() -> None:
    sweep_job = load_spec(["budget=small", "fleet=2", "tracking.uri=sqlite:////tmp/sweep/mlflow.db",
                           "tracking.artifact_root=/tmp/sweep/art", "video.enabled=false"])
    assert session_run_name(sweep_job) == "budget=small fleet=2"  # never "mlflow.db"
    assert session_run_name(load_spec(["session.name=grip study", "fleet=2"])) == "grip study"
    assert session_run_name(load_spec([])) == "drawer fleet=1 (defaults)"
    assert changed_overrides(["tracking.uri=x", "hydra.verbose=true", "+video.fps=5", "task=reach"]) == ["task=reach"]
    assert label([], None) == "defaults"


def test_iteration_metrics_carry_lower_bounds_over_the_trials_that_gave_evidence() -> None:
    it = _summary()
    crash = TrialRecord(trial_id="i0004-t004", iteration=4, station=0, seed=1, outcome="crash", attempts=0,
                        success_attempt=None, pass_at_1=False, pass_at_k=False, robot_seconds=0.0, wall_s=0.1,
                        steps=0, clamps=0)
    ok = [TrialRecord(trial_id=f"i0004-t00{k}", iteration=4, station=0, seed=k, outcome="success" if k else "failure",
                      attempts=1, success_attempt=1 if k else None, pass_at_1=bool(k), pass_at_k=True,
                      robot_seconds=2.0, wall_s=0.1, steps=10, clamps=0, final_state={"drawer_opening": 0.1 * k})
          for k in range(4)]
    m = iteration_metrics(it, [*ok, crash])
    assert m["evidence_trials"] == 4 and m["trials"] == 4  # the crash says nothing about the candidate
    assert m["success_rate_lcb"] == pytest.approx(wilson(3, 4)[0]) and m["success_rate_lcb"] < m["success_rate"]
    assert m["pass_at_k_lcb"] == pytest.approx(wilson(4, 4)[0])
    assert m["candidate_success_lcb"] == pytest.approx(wilson(3, 4)[0])
    table = trial_table([*ok, crash], "c1")
    assert len(table["data"]) == 5 and table["columns"][:4] == ["trial_id", "station", "seed", "outcome"]
    assert "state.drawer_opening" in table["columns"]
    row = dict(zip(table["columns"], table["data"][1], strict=True))
    assert row["success"] is True and row["state.drawer_opening"] == pytest.approx(0.1)
    assert rounded(0.9615384615384616) == 0.9615


def test_the_hypothesis_is_the_run_description_whole() -> None:
    it = _summary(hypothesis="h" * 3000 + " end")
    tags = iteration_tags(it, raised_best=True, sweep=None)
    note = tags["mlflow.note.content"]
    assert note.startswith("h" * 3000 + " end") and "**keep**" in note and "3/4 successes" in note
