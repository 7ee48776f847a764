"""Per shipped task: a known failing candidate (the scripted baseline with one parameter pushed far off) is
attributed, on real MuJoCo trials, to the done condition and the phase a person would name."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema
import pytest

from enpire import PROJECT_ROOT
from enpire.attribution import failure_histogram
from enpire.fleet.stations import make_station
from enpire.records import Candidate, TrialRecord, TrialRequest
from enpire.station import protocol
from tests.world.conftest import spec_for

# task, parameters pushed off the baseline, seed, first failing condition, phase reached, words of the histogram
CASES = [
    ("drawer", {"grasp_height": 0.04}, 0, "drawer_opening", "grasp", "handle never grasped"),
    ("drawer", {"pull_distance": 0.08}, 0, "drawer_opening", "pull", "drawer_opening 0.047 of >= 0.15 m"),
    ("reach", {"speed": 0.02}, 0, "ee_to_target", "move", "tool never within 2 cm of the target"),
    ("push_t", {"pos_tol": 0.06}, 1, "block_pos_error", "push", "block never within 3 cm of the target"),
    ("peg_insert", {"insert_depth": 0.0}, 0, "peg_depth", "align", "peg never entered the hole"),
    ("lift", {"grasp_depth": 0.03}, 0, "object_height", "approach", "jaws never reached the cube"),
    ("lift", {"lift_height": 0.1}, 0, "object_height", "lift", "object_height 0.0886 of >= 0.1 m"),
]


@functools.cache
def _station(task: str) -> object:
    return make_station(spec_for(task), 0)  # one per task: a station runs trial after trial


def _trial(task: str, params: dict[str, float], seed: int) -> tuple[TrialRecord, object]:
    spec = spec_for(task)
    station = _station(task)
    request = TrialRequest(f"{task}-{seed}", 0, seed, Candidate("c", params={**spec.policy.defaults(), **params}))
    return station.run_trial(request), spec  # type: ignore[attr-defined]


@pytest.mark.parametrize(("task", "params", "seed", "failing", "phase", "words"), CASES,
                         ids=[f"{c[0]}-{next(iter(c[1]))}" for c in CASES])
def test_failing_candidate_is_attributed_to_the_right_predicate(task: str, params: dict[str, float], seed: int,
                                                                failing: str, phase: str, words: str) -> None:
    rec, spec = _trial(task, params, seed)
    assert rec.outcome == "failure"
    first = rec.attribution[0]
    assert len(rec.attribution) == rec.attempts  # one report per attempt
    assert first["failing"] == failing and first["phase"] == phase and not first["passed"]
    cond = next(c for c in first["conditions"] if c["quantity"] == failing)
    assert cond["margin"] < 0 and not cond["passed"]  # short of its threshold, in the quantity's unit
    assert cond["margin"] == pytest.approx(cond["value"] - cond["threshold"] if cond["op"] == ">="
                                           else cond["threshold"] - cond["value"])
    (entry,) = failure_histogram([rec], spec.done, {n: q.unit for n, q in spec.task.state_space.items()})
    assert words in entry["label"] and entry["count"] == 1


def test_a_success_is_attributed_as_passing_with_its_hold() -> None:
    rec, spec = _trial("reach", {}, 0)
    assert rec.outcome == "success"
    (report,) = rec.attribution
    assert report["passed"] and report["failing"] is None and report["phase"] == "arrive"
    assert report["held_s"] >= spec.done.hold_s - 1e-9
    assert all(c["passed"] and c["margin"] >= 0 and c["held_s"] >= spec.done.hold_s - 1e-9
               for c in report["conditions"])
    assert failure_histogram([rec], spec.done) == ()


def test_attributed_record_fits_the_trial_schema_and_the_station_protocol() -> None:
    rec, _ = _trial("drawer", {"grasp_height": 0.04}, 0)
    schema = json.loads(Path(PROJECT_ROOT / "enpire/specs/trial.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(json.dumps(rec.to_dict())))
    doc = protocol.record_to_json(rec)
    protocol._validator("record").validate(doc)
    assert protocol.record_from_json(json.loads(json.dumps(doc))).attribution == rec.attribution
