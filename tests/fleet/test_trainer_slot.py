"""The trainer slot: ledger checks before a job starts, measured charges, checkpoint reuse, failures as crashes.

Real training (enpire.policy.trainer.train_candidate, Lightning on CPU) with tiny recipes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from enpire.agent.intake import normalise
from enpire.fleet.budget import BudgetLedger
from enpire.fleet.trainer_slot import TrainerSlot
from enpire.records import Evaluation
from enpire.spec import ExperimentSpec, load_spec

TINY = {"demos": 4, "epochs": 1, "online": "none", "hidden_sizes": [16], "source_trials": "demos"}


@pytest.fixture(scope="module")
def spec() -> ExperimentSpec:
    return load_spec(["task=drawer", "policy=bc", "budget=smoke", "video.enabled=false"])


def bc_eval(spec: ExperimentSpec, index: int, recipe: dict) -> Evaluation:
    candidate, key = normalise({"candidate": {"kind": "bc", "recipe": recipe}}, spec, {})
    return Evaluation(index=index, agent="a", branch="a", parent=None, hypothesis="h", candidate=candidate, key=key,
                      trials_wanted=2)


def ledger(spec: ExperimentSpec) -> BudgetLedger:
    return BudgetLedger(spec.budget, trial_reserve_s=1.0)


def run_until_idle(slot: TrainerSlot, queue: list[Evaluation], limit_s: float = 60.0) -> None:
    t0 = time.monotonic()
    slot.pump(queue)
    while slot.busy() and time.monotonic() - t0 < limit_s:
        time.sleep(0.05)
        slot.pump(queue)


def test_trains_charges_the_measured_time_and_reuses_the_checkpoint_of_an_identical_recipe(
        spec: ExperimentSpec, tmp_path: Path) -> None:
    book = ledger(spec)
    slot = TrainerSlot(spec, book, tmp_path)
    first, again, other = bc_eval(spec, 0, TINY), bc_eval(spec, 1, TINY), bc_eval(spec, 2, {**TINY, "epochs": 2})
    assert not first.ready  # a bc candidate is not dispatched before it has a checkpoint
    queue = [first, again]
    run_until_idle(slot, queue)
    assert slot.jobs == 1 and first.ready and Path(first.candidate["checkpoint"]).is_file()
    assert again.ready and again.candidate["checkpoint"] == first.candidate["checkpoint"]  # same recipe: no retraining
    charged = book.used["trainer_seconds"]
    assert charged > 0 and book.sum_of_charges("trainer_seconds") == pytest.approx(charged)
    assert slot.busy_seconds() >= charged * 0.9
    slot.pump([other, first])
    assert slot.busy() and not other.ready
    slot.pump([other, bc_eval(spec, 3, {**TINY, "epochs": 3})])  # one job at a time: the next one waits
    assert slot.jobs == 2
    slot.wait()
    assert slot.jobs == 2 and other.ready and other.candidate["checkpoint"] != first.candidate["checkpoint"]
    assert book.used["trainer_seconds"] > charged


def test_nothing_starts_once_the_trainer_budget_is_spent(spec: ExperimentSpec, tmp_path: Path) -> None:
    book = ledger(spec)
    book.charge("trainer_seconds", spec.budget.trainer_seconds)
    slot = TrainerSlot(spec, book, tmp_path)
    ev = bc_eval(spec, 0, TINY)
    slot.pump([ev])
    assert not slot.busy() and slot.jobs == 0 and slot.blocked_by == "trainer_seconds"
    assert ev.closed_as is not None and ev.closed_as[0] == "discard" and "trainer_seconds" in ev.closed_as[1]
    assert ev.trials_wanted == 0  # the scheduler sees it complete: it closes without trials
    assert not slot.wants_work([])  # and no agent is asked for recipes nobody could train


def test_a_failing_training_job_closes_its_iteration_as_crash_with_the_traceback(
        spec: ExperimentSpec, tmp_path: Path) -> None:
    book = ledger(spec)
    slot = TrainerSlot(spec, book, tmp_path)
    ev = Evaluation(index=0, agent="a", branch="a", parent=None, hypothesis="h",
                    candidate={"kind": "bc", "recipe": {"not_a_recipe_key": 1}}, key="cbad", trials_wanted=2)
    run_until_idle(slot, [ev])
    assert ev.closed_as is not None and ev.closed_as[0] == "crash"
    assert "Traceback" in ev.closed_as[1] and "not_a_recipe_key" in ev.closed_as[1]
    assert book.used["trainer_seconds"] > 0  # failed jobs are charged too
