"""The MLflow layout's pure parts: flattened spec params, iteration tags, trial rows valid against specs/."""

from __future__ import annotations

from enpire.agent.api import IterationSummary
from enpire.spec import load_spec
from enpire.spec.schemas import load_schema, problems_with, validator_for_schema
from enpire.track.records import flatten, iteration_tags, trial_row
from enpire.world.api import SafetyEvent, TrialRecord


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
