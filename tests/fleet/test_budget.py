"""Budget caps: each cap stops a real session at its limit, and the ledger equals what was recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from enpire.fleet.budget import BudgetLedger
from enpire.spec import load_spec
from tests.fleet.support import ScriptedAgent, migrated_store, params_proposal, run, spec_of, store

__all__ = ["migrated_store", "store"]


def test_ledger_reserves_worst_case_robot_time_so_the_cap_is_never_crossed() -> None:
    spec = load_spec(["budget=smoke", "budget.robot_seconds=30"])
    ledger = BudgetLedger(spec.budget, trial_reserve_s=12.0)
    assert ledger.blocking_trial() is None
    ledger.start_trial()
    ledger.start_trial()  # 24 s reserved: a third could reach 36 > 30
    assert ledger.blocking_trial() == "robot_seconds"
    ledger.end_trial(5.0)
    assert ledger.blocking_trial() is None  # 5 used + 12 reserved + 12 = 29 <= 30
    ledger.end_trial(7.5)
    assert ledger.used["robot_seconds"] == pytest.approx(12.5)
    assert ledger.sum_of_charges("robot_seconds") == pytest.approx(ledger.used["robot_seconds"])
    assert ledger.reserved["robot_seconds"] == pytest.approx(0.0)


def test_ledger_rejects_unknown_keys_and_negative_charges() -> None:
    ledger = BudgetLedger(load_spec(["budget=smoke"]).budget, trial_reserve_s=1.0)
    with pytest.raises(ValueError, match="budget key: got 'coffee'"):
        ledger.charge("coffee", 1.0)
    with pytest.raises(ValueError, match="expected >= 0"):
        ledger.charge("tokens", -3)


def _trial_rows(uri: str, session_id: str) -> list[dict]:
    client = MlflowClient(tracking_uri=uri)
    session = client.get_run(session_id)
    children = client.search_runs([session.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{session_id}'")
    rows = []
    for child in children:
        path = client.download_artifacts(child.info.run_id, "trials.jsonl")
        rows += [json.loads(line) for line in Path(path).read_text().splitlines() if line]
    return rows


def test_iterations_cap_stops_at_exactly_the_limit(store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=3", "budget.trials=100")
    agent = ScriptedAgent([params_proposal(spec, trials=1)])
    code, summary, _ = run(spec, tmp_path, agents=[agent])
    assert code == 0
    assert summary["stopped_by"] == "iterations"
    assert summary["iterations"] == "3" and summary["trials"] == "3"
    assert len(agent.observed) == 3


def test_trials_cap_stops_at_exactly_the_limit_and_mlflow_holds_every_trial(store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=50", "budget.trials=5")
    code, summary, _ = run(spec, tmp_path, agents=[ScriptedAgent([params_proposal(spec, trials=2)])])
    assert code == 0
    assert summary["stopped_by"] == "trials"
    assert summary["trials"] == "5"
    rows = _trial_rows(spec.tracking.uri, summary["session_id"])
    assert len(rows) == 5
    assert sum(r["robot_seconds"] for r in rows) == pytest.approx(float(summary["robot_seconds"]), abs=0.01)


def test_robot_seconds_cap_is_never_exceeded(store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=50", "budget.trials=100", "budget.robot_seconds=40")
    reserve = spec.done.time_limit_s * spec.done.attempts
    code, summary, _ = run(spec, tmp_path, agents=[ScriptedAgent([params_proposal(spec, trials=2)])])
    assert code == 0
    assert summary["stopped_by"] == "robot_seconds"
    used = float(summary["robot_seconds"])
    assert 40.0 - reserve < used <= 40.0  # stopped because one more worst-case trial could cross the cap


@pytest.mark.slow  # 4-5 s: with the slow tests in CI, keeping `make test` under ten minutes
def test_wall_clock_cap_starts_nothing_after_the_limit(store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=500", "budget.trials=5000",
                   "budget.robot_seconds=100000", "budget.wall_clock_s=4")
    code, summary, _ = run(spec, tmp_path, agents=[ScriptedAgent([params_proposal(spec, trials=1)])])
    assert code == 0
    assert summary["stopped_by"] == "wall_clock_s"
    # the trial in flight at the cap finishes (inline trials take well under 3 s), nothing else starts
    assert float(summary["loop_wall_s"]) < 4 + 3.0


@pytest.mark.parametrize("cap", ["budget.trials=7", "budget.robot_seconds=50"])
def test_no_agent_call_starts_once_no_trial_of_it_could_run(store: list[str], tmp_path: Path, cap: str) -> None:
    """robot_seconds=50 once gave 14 iterations for 4 trials, trials=7 gave 16: calls past the cap were wasted."""
    spec = spec_of(*store, "budget=smoke", "budget.iterations=50", "budget.trials=100", cap)
    agent = ScriptedAgent([params_proposal(spec, trials=2)], tokens=100)
    code, summary, _ = run(spec, tmp_path, agents=[agent])
    assert code == 0
    trials, iterations = int(summary["trials"]), int(summary["iterations"])
    assert trials > 0
    ran = [it for it in agent.observed if it.trials > 0]
    assert len(agent.states) <= len(ran) + 1  # at most the one call in flight when the cap closed
    assert iterations == len(ran) and iterations <= trials  # every iteration ran, none was a wasted call
    assert summary["cap_exceeded.trials"] == "0" and summary["cap_exceeded.robot_seconds"] == "0"
    assert summary["cap_exceeded.iterations"] == "0"
    assert int(summary["tokens"]) == 100 * len(agent.states)  # every call's tokens are charged, none is lost


def test_trials_cap_trims_the_last_proposal_to_what_is_left(store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=50", "budget.trials=7", "budget.robot_seconds=1000")
    agent = ScriptedAgent([params_proposal(spec, trials=2)])
    code, summary, _ = run(spec, tmp_path, agents=[agent])
    assert code == 0 and summary["trials"] == "7" and summary["stopped_by"] == "trials"
    assert [it.trials for it in agent.observed if it.decision != "cancelled"] == [2, 2, 2, 1]
