"""The trainer slot runs an rl candidate's learner beside its trials: snapshot 0 before the first dispatch,
the trials' records to the learner, a stop once every trial is back, the checkpoint kept for warm starts."""

from __future__ import annotations

from pathlib import Path

from enpire.fleet.budget import BudgetLedger
from enpire.fleet.stations import make_station
from enpire.fleet.trainer_slot import TrainerSlot
from enpire.policy.rl import latest_snapshot
from enpire.policy.rl_recipe import resolve_rl_recipe
from enpire.records import Evaluation
from enpire.spec import ExperimentSpec
from tests.rl.conftest import FAST


def evaluation(spec: ExperimentSpec, index: int, **recipe: object) -> Evaluation:
    return Evaluation(index=index, agent="search-0", branch="b0", parent=None, hypothesis="learn online",
                      candidate={"kind": "rl", "recipe": resolve_rl_recipe(spec, recipe)}, key=f"k{index}",
                      trials_wanted=1)


def test_an_rl_candidate_trains_beside_its_trials_and_its_checkpoint_warm_starts_the_next(tmp_path: Path) -> None:
    from enpire.fleet.scheduler import to_candidate
    from enpire.records import TrialRequest
    from enpire.spec import load_spec

    spec = load_spec([*FAST, "done.episode.time_limit_s=1.0", "done.episode.attempts=1"])
    ledger = BudgetLedger(spec.budget, trial_reserve_s=1.0)
    slot = TrainerSlot(spec, ledger, tmp_path / "trainer")
    ev = evaluation(spec, 0)
    assert ev.ready  # rl trials may start at once: stations run the newest snapshot
    slot.pump([ev])
    directory = ev.candidate["checkpoint"]
    assert latest_snapshot(directory)[0] == 0 and slot.busy()  # type: ignore[index]
    station = make_station(spec, 0)
    try:
        record = station.run_trial(TrialRequest("i0000-t000", 0, 3, to_candidate(ev), record_trajectory=True,
                                                out_dir=str(tmp_path / "trials")))
    finally:
        station.close()
    ev.dispatched, ev.records = 1, [record]
    slot.note(ev, record)
    slot.pump([ev])  # every trial is back: the learner wraps up
    slot.wait(60)
    assert not slot.busy()
    assert Path(slot.rl.checkpoints[0]).is_file()
    assert ledger.used["trainer_seconds"] > 0 and slot.busy_s == ledger.used["trainer_seconds"]
    assert slot.rl.jobs[0].trials_ingested == 1 and slot.rl.jobs[0].online_transitions == record.steps

    warm = evaluation(spec, 1, warm_start=0)
    slot.pump([warm])
    assert slot.rl.jobs[1].init_from == slot.rl.checkpoints[0] and warm.closed_as is None
    slot.wait(60)

    unknown = evaluation(spec, 2, warm_start=7)
    slot.pump([unknown])
    assert unknown.closed_as is not None and unknown.closed_as[0] == "crash"
    assert unknown.closed_as[1].startswith("candidate.recipe.warm_start: got 7; expected an rl iteration")
