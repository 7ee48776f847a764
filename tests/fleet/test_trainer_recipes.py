"""The search agent in bc and code sessions: recipes the trainer can take, deterministic, budget-aware."""

from __future__ import annotations

from pathlib import Path

import pytest

from enpire.agent.api import Budgets, ResearchState
from enpire.agent.intake import normalise, rejection
from enpire.agent.proposal import proposal_schema
from enpire.agent.search import SearchAgent
from enpire.records import IterationSummary
from enpire.spec import ExperimentSpec, load_spec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spec() -> ExperimentSpec:
    return load_spec(["task=drawer", "policy=bc", "budget=smoke", "policy.train.epochs=5"])


def state(spec: ExperimentSpec, iterations: tuple[IterationSummary, ...], trainer_used: float = 0.0) -> ResearchState:
    limits = {"iterations": 10, "trials": 100, "robot_seconds": 1e4, "wall_clock_s": 1e4, "tokens": 0,
              "trainer_seconds": 20.0}
    return ResearchState(task_name="drawer", task_description="", policy_kind=spec.policy.kind, action_mode="cartesian",
                         search_space={}, goal="", branch="search-0", iterations=iterations, branch_best={},
                         budgets=Budgets(used={"trainer_seconds": trainer_used}, limits=limits),
                         proposal_schema=proposal_schema(spec.policy))


def result(spec: ExperimentSpec, index: int, proposal: dict, successes: int, trials: int) -> IterationSummary:
    candidate, key = normalise(proposal, spec, {})
    candidate = {**candidate, "checkpoint": f"/tmp/i{index}/bc.ckpt"}  # as the trainer slot leaves it
    return IterationSummary(index=index, agent="search-0", branch="search-0", parent=proposal.get("parent"),
                            hypothesis=proposal["hypothesis"], candidate=candidate, candidate_id=key,
                            decision="keep", success_rate=successes / trials, pass_at_1=successes / trials,
                            pass_at_k=successes / trials, trials=trials, safety_stops=0, robot_seconds=1.0, tokens=0,
                            candidate_trials=trials, candidate_success_rate=successes / trials)


def test_bc_proposals_are_valid_recipes_starting_from_the_policys_own_and_moving_one_key_at_a_time(
        spec: ExperimentSpec) -> None:
    agent = SearchAgent(spec, spec.agent, index=0, branch="search-0", seed=0)
    schema = proposal_schema(spec.policy)
    first = agent.propose(state(spec, ())).proposal
    assert rejection(first, schema, {}) is None and first["candidate"]["kind"] == "bc"
    assert first["candidate"]["recipe"]["epochs"] == 5 and first["parent"] is None  # the session's policy.train
    done = (result(spec, 0, first, 1, 4),)
    second = agent.propose(state(spec, done)).proposal
    assert rejection(second, schema, {0: done[0].candidate}) is None
    changed = {k for k, v in second["candidate"]["recipe"].items() if first["candidate"]["recipe"][k] != v}
    assert changed == {"epochs"} and second["candidate"]["recipe"]["epochs"] == 10 and second["parent"] == 0
    again = SearchAgent(spec, spec.agent, index=0, branch="search-0", seed=0)  # deterministic
    assert again.propose(state(spec, ())).proposal == first


def test_with_the_trainer_budget_spent_the_best_recipe_is_re_evaluated_not_retrained(spec: ExperimentSpec) -> None:
    agent = SearchAgent(spec, spec.agent, index=0, branch="search-0", seed=0)
    first = agent.propose(state(spec, ())).proposal
    done = (result(spec, 0, first, 2, 4),)
    reply = agent.propose(state(spec, done, trainer_used=20.0)).proposal
    assert reply["candidate"] == first["candidate"] and reply["parent"] == 0


def test_code_sessions_evaluate_the_users_file_and_say_so_when_there_is_none() -> None:
    path = "examples/policies/drawer_policy.py"
    spec = load_spec(["task=drawer", "policy=code", f"policy.source={path}"])
    agent = SearchAgent(spec, spec.agent, index=0, branch="search-0", seed=0)
    proposal = agent.propose(state(spec, ())).proposal
    assert proposal["candidate"] == {"kind": "code", "source": (REPO / path).read_text()}
    assert rejection(proposal, proposal_schema(spec.policy), {}) is None
    blank = load_spec(["task=drawer", "policy=code"])
    reply = SearchAgent(blank, blank.agent, index=0, branch="search-0", seed=0).propose(state(blank, ()))
    assert reply.proposal is None and "policy.source" in (reply.error or "")
