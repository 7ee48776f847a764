"""The digital twin and the dry check (`screen:`, docs/twin.md): real sessions on MuJoCo stations, MLflow on SQLite.

A candidate the twin (the nominal task on stations of its own) fails is rejected before any robot time, with the
twin's figures; one it passes reaches the fleet carrying them; a candidate proposed again reuses its verdict.
Agent-written code that cannot start, reset or act is rejected by the dry check, naming why, without a trial.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from enpire.spec.errors import SpecError
from tests.fleet.support import ScriptedAgent, migrated_store, params_proposal, run, spec_of, store

__all__ = ["migrated_store", "store"]


def iteration_runs(tmp_path: Path, session_id: str) -> dict[int, object]:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_run(session_id).info.experiment_id
    runs = client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{session_id}'")
    return {int(r.data.tags["enpire.iteration"]): r for r in runs}


def test_the_twin_keeps_a_failing_candidate_off_the_fleet_and_passes_a_good_one(
        store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=3", "screen.twin=sim", "screen.trials=2",
                   "dynamics=perturbed")
    short = params_proposal(spec, trials=2, pull_distance=0.05)  # never opens the drawer its 0.15 m
    good = params_proposal(spec, trials=2)
    agent = ScriptedAgent([short, good, short])
    code, summary, _ = run(spec, tmp_path, agents=[agent])
    assert code == 0
    first, second, third = sorted(agent.observed, key=lambda s: s.index)

    # screened out: no fleet trial, no robot second, the twin's figures and failed trials reach the agent
    assert first.decision == "rejected" and first.trials == 0 and first.robot_seconds == 0.0
    assert "digital twin" in first.reason and "0/2" in first.reason
    assert first.twin == pytest.approx({"trials": 2, "successes": 0, "success_rate": 0.0,
                                        "sim_seconds": first.twin["sim_seconds"], "min_success": 0.5,
                                        "passed": False})
    assert first.twin["sim_seconds"] > 0 and first.failures  # the twin's trials ran physics
    assert first.failure_histogram and "drawer" in first.failure_histogram[0]["label"]

    # passed: its trials ran on the (perturbed) fleet, and it carries what the twin saw
    assert second.decision in ("keep", "discard") and second.trials == 2
    assert second.twin["passed"] and second.twin["successes"] >= 1

    # the same failing candidate again: the same verdict, no new twin trial
    assert third.decision == "rejected" and third.reason == first.reason
    assert summary["twin_candidates"] == "2" and summary["twin_rejected"] == "1"
    assert summary["twin_trials"] == "4"  # 2 + 2: the re-proposal ran none
    assert float(summary["twin_sim_seconds"]) == pytest.approx(first.twin["sim_seconds"] + second.twin["sim_seconds"],
                                                               abs=1e-3)
    assert summary["trials"] == "2"  # robot time only for the candidate the twin passed
    assert summary["trainer_seconds"] == "0"  # a held params candidate is not one the trainer trains
    assert float(summary["robot_seconds"]) == pytest.approx(second.robot_seconds, abs=1e-3)

    runs = iteration_runs(tmp_path, summary["session_id"])
    assert runs[0].data.tags["enpire.twin"] == "screened_out" and runs[1].data.tags["enpire.twin"] == "passed"
    assert runs[0].data.metrics["twin_success_rate"] == 0.0 and runs[0].data.metrics["trials"] == 0.0
    assert runs[1].data.metrics["twin_trials"] == 2.0
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    session = client.get_run(summary["session_id"]).data.metrics
    assert session["twin_trials"] == 4.0 and session["twin_rejected"] == 1.0


IMPORT_ERROR = "import no_such_module_anywhere\n\ndef make_policy():\n    return None\n"
WRONG_SIZE = ("import numpy as np\n\nclass P:\n    def reset(self, obs, feedback):\n        pass\n\n"
              "    def act(self, obs):\n        return np.zeros(2)\n\ndef make_policy():\n    return P()\n")
RAISES_LATER = ("class P:\n    def __init__(self):\n        self.n = 0\n\n    def reset(self, obs, feedback):\n"
                "        pass\n\n    def act(self, obs):\n        self.n += 1\n        if self.n == 3:\n"
                "            raise RuntimeError('gripper map missing')\n        return [0.0] * 5\n\n"
                "def make_policy():\n    return P()\n")


def code_proposal(source: str) -> dict:
    return {"hypothesis": "A scripted code candidate.", "parent": None, "trials": 1,
            "candidate": {"kind": "code", "source": source}}


@pytest.mark.parametrize(("source", "says"), [
    (IMPORT_ERROR, "no_such_module_anywhere"),
    (WRONG_SIZE, "shape (2,)"),
    (RAISES_LATER, "act() call 3 of 5"),
])
def test_the_dry_check_rejects_code_that_cannot_act_without_a_trial(store: list[str], tmp_path: Path, source: str,
                                                                    says: str) -> None:
    spec = spec_of(*store, "policy=code", "budget=smoke", "budget.iterations=1")
    agent = ScriptedAgent([code_proposal(source)])
    code, summary, _ = run(spec, tmp_path, agents=[agent])
    assert code == 0
    result = agent.observed[0]
    assert result.decision == "rejected" and result.trials == 0
    assert result.reason.startswith("dry check failed before any trial: ") and says in result.reason, result.reason
    assert summary["trials"] == "0" and float(summary["robot_seconds"]) == 0.0
    assert summary["dry_checks"] == "1" and summary["dry_rejected"] == "1"


def test_code_that_passes_the_dry_check_runs_on_the_fleet(store: list[str], tmp_path: Path) -> None:
    steady = ("class P:\n    def reset(self, obs, feedback):\n        pass\n\n    def act(self, obs):\n"
              "        return [0.0] * 5\n\ndef make_policy():\n    return P()\n")
    spec = spec_of(*store, "policy=code", "budget=smoke", "budget.iterations=1")
    agent = ScriptedAgent([code_proposal(steady)])
    code, summary, _ = run(spec, tmp_path, agents=[agent])
    assert code == 0
    assert agent.observed[0].decision != "rejected" and agent.observed[0].trials == 1
    assert summary["dry_checks"] == "1" and summary["dry_rejected"] == "0"


@pytest.mark.parametrize(("override", "path"), [("screen.twin=real", "screen.twin"),
                                                ("dynamics.friction=0", "dynamics.friction"),
                                                ("screen.min_success=1.5", "screen.min_success")])
def test_a_bad_screen_or_dynamics_value_names_its_key(override: str, path: str) -> None:
    with pytest.raises(SpecError) as caught:
        spec_of(override)
    assert path in str(caught.value)


def test_a_candidate_proposed_while_it_is_screened_waits_for_the_same_verdict(tmp_path: Path) -> None:
    from enpire.agent.space import candidate_key
    from enpire.fleet.executor import STATION_FACTORY
    from enpire.fleet.screen import Screen
    from enpire.records import Evaluation

    spec = spec_of("screen.twin=sim", "screen.trials=3")
    candidate = params_proposal(spec, pull_distance=0.05)["candidate"]
    key = candidate_key(candidate)
    evs = [Evaluation(index=i, agent="a", branch="a", parent=None, hypothesis="h", candidate=candidate, key=key,
                      trials_wanted=1) for i in range(3)]
    screen = Screen(spec, STATION_FACTORY, tmp_path)
    try:
        screen.hold(evs[0], "member-0")
        screen.hold(evs[1], "member-1")  # the same candidate while its twin trials are out
        verdicts = []
        while screen.busy():
            verdicts += screen.pump()
        assert [(v.ev.index, v.member, v.passed) for v in verdicts] == [(0, "member-0", False), (1, "member-1", False)]
        assert verdicts[0].reason == verdicts[1].reason and verdicts[0].twin == verdicts[1].twin
        screen.hold(evs[2], "member-2")  # proposed again later: the remembered verdict, at the next pump
        again = screen.pump()
        assert [(v.ev.index, v.passed, v.reason) for v in again] == [(2, False, verdicts[0].reason)]
        assert screen.totals["twin_trials"] == 3 and screen.totals["twin_candidates"] == 1
    finally:
        screen.close()


class BatchAgent(ScriptedAgent):
    """Both proposals in one reply (two slots): the second is accepted while the twin holds the first."""

    batch = 2

    def propose(self, state):  # noqa: ANN001, ANN201 - the Agent protocol
        from enpire.agent.api import AgentReply

        self.states.append(state)
        return AgentReply(proposal=self.proposals[0], more=self.proposals[1:state.slots])


def test_iterations_the_twin_holds_count_against_the_trials_cap(store: list[str], tmp_path: Path) -> None:
    wanted = []
    for twin in ("none", "sim"):
        spec = spec_of(*store, "budget=smoke", "budget.iterations=2", "budget.trials=3", f"screen.twin={twin}")
        agent = BatchAgent([params_proposal(spec, trials=2), params_proposal(spec, trials=2, pull_speed=0.3)])
        code, summary, _ = run(spec, tmp_path / twin, agents=[agent])
        assert code == 0 and int(summary["trials"]) <= 3
        wanted.append([(it.index, it.trials if it.decision != "rejected" else "twin") for it in
                       sorted(agent.observed, key=lambda s: s.index)])
    # the second proposal is cut to the one trial the cap leaves, whether the twin holds the first or not
    assert wanted[0] == [(0, 2), (1, 1)]
    assert wanted[1] in ([(0, 2), (1, 1)], [(0, "twin"), (1, 1)]), wanted
