"""The trainer slot inside a real session (policy=bc, inline station, MLflow on SQLite): pipelining and the cap."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.fleet.support import ScriptedAgent, migrated_store, run, spec_of, store

__all__ = ["migrated_store", "store"]

TINY = {"demos": 4, "epochs": 1, "online": "none", "hidden_sizes": [16], "source_trials": "demos"}


def bc_proposal(trials: int, **recipe: object) -> dict:
    return {"hypothesis": "Train a tiny bc recipe as a scripted test.", "parent": None, "trials": trials,
            "candidate": {"kind": "bc", "recipe": {**TINY, **recipe}}}


class TwoAtOnce(ScriptedAgent):
    max_outstanding = 2  # may have a candidate training while another is evaluated


@pytest.mark.slow  # two real trainings and five trials: about 10-20 s on 2 shared cores
def test_the_next_recipe_trains_while_stations_evaluate_the_previous_one(store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "policy=bc", "budget=smoke", "budget.iterations=2", "budget.trainer_seconds=120")
    agent = TwoAtOnce([bc_proposal(3), bc_proposal(2, epochs=2)])
    code, summary, _ = run(spec, tmp_path, agents=[agent])
    assert code == 0, summary
    assert [it.decision != "crash" and it.trials > 0 for it in agent.observed] == [True, True]
    assert summary["trainer_jobs"] == "2"
    assert float(summary["trainer_overlap_s"]) > 0  # pipelining: trials ran while the second recipe trained
    trainer_s, wall = float(summary["trainer_seconds"]), float(summary["wall_s"])
    # utilisation is the slot's busy wall time over the session's: at least what was charged (more on a loaded
    # machine, where a job's wall time stretches beyond its measured training time), never above 1
    assert 0 < trainer_s < wall and trainer_s / wall - 0.05 <= float(summary["trainer_utilization"]) <= 1.0
    session = MlflowClient(tracking_uri=spec.tracking.uri).get_run(summary["session_id"])
    assert session.data.metrics["trainer_utilization"] == pytest.approx(float(summary["trainer_utilization"]))


def test_no_training_starts_past_the_trainer_seconds_cap(store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "policy=bc", "budget=smoke", "budget.iterations=2", "budget.trainer_seconds=0.01")
    agent = ScriptedAgent([bc_proposal(1), bc_proposal(1, epochs=2)])
    code, summary, _ = run(spec, tmp_path, agents=[agent])
    assert code == 0
    first, second = agent.observed
    assert first.trials == 1  # the first job starts: nothing was spent yet
    assert second.trials == 0 and second.decision == "discard" and "trainer_seconds" in second.reason
    assert summary["trainer_jobs"] == "1" and float(summary["trainer_seconds"]) > 0.01  # overshoot: one job at most
