"""rl proposals: completed from policy.train, and rejected with the key path when out of the policy's bounds."""

from __future__ import annotations

import pytest

from enpire.agent.intake import normalise, rejection
from enpire.agent.proposal import proposal_schema
from enpire.policy.rl_recipe import REWARD_TERMS, resolve_rl_recipe
from enpire.spec import ExperimentSpec, load_spec


def proposal(recipe: dict) -> dict:
    return {"hypothesis": "more online learning helps", "parent": None, "trials": 4,
            "candidate": {"kind": "rl", "recipe": recipe}}


def test_the_shipped_rl_policy_composes_and_its_defaults_are_a_valid_proposal() -> None:
    spec = load_spec(["task=reach", "policy=rl"])
    recipe = resolve_rl_recipe(spec, None)
    assert recipe["demo_ratio"] == 0.5 and recipe["residual"] is True
    assert rejection(proposal(recipe), proposal_schema(spec.policy), {}) is None
    candidate, key = normalise(proposal({"learning_rate": 1e-3}), spec, {})
    assert candidate["recipe"]["learning_rate"] == 1e-3 and candidate["recipe"]["batch_size"] == recipe["batch_size"]
    assert normalise(proposal({**recipe, "learning_rate": 1e-3}), spec, {})[1] == key  # equal recipes pool


@pytest.mark.parametrize(("recipe", "path"), [
    ({"learning_rate": 0.5}, "proposal.candidate.recipe.learning_rate"),
    ({"hidden_sizes": [64, 4096]}, "proposal.candidate.recipe.hidden_sizes[1]"),
    ({"reward": {"success": 1000.0}}, "proposal.candidate.recipe.reward.success"),
    ({"action_scale": 0.5}, "proposal.candidate.recipe.action_scale"),
    ({"demo_ratio": 1.5}, "proposal.candidate.recipe.demo_ratio"),
])
def test_an_rl_proposal_out_of_its_bounds_is_rejected_with_the_key_path(recipe: dict, path: str) -> None:
    spec = load_spec(["task=reach", "policy=rl"])
    why = rejection(proposal(recipe), proposal_schema(spec.policy), {})
    assert why is not None and why.startswith(path), why


def test_bounds_come_from_the_policy_config() -> None:
    spec = load_spec(["task=reach", "policy=rl", "policy.train.bounds.learning_rate=[1e-4,2e-4]"])
    why = rejection(proposal({"learning_rate": 3e-4}), proposal_schema(spec.policy), {})
    assert why is not None and why.startswith("proposal.candidate.recipe.learning_rate: got 0.0003; expected <= 0.0002")
    with pytest.raises(ValueError, match=r"candidate\.recipe\.learning_rate: got 0\.0003; expected within"):
        resolve_rl_recipe(spec, {"learning_rate": 3e-4})  # callers that skip the intake get the same check


def test_reward_terms_are_a_declared_set_and_the_verifier_is_not_one(rl_spec: ExperimentSpec) -> None:
    assert set(REWARD_TERMS) == {"shaping", "success", "safety_stop", "action"}
    why = rejection(proposal({"reward": {"verifier": 1.0}}), proposal_schema(rl_spec.policy), {})
    assert why is not None and "proposal.candidate.recipe.reward" in why
    with pytest.raises(ValueError, match=r"candidate\.recipe\.reward: unknown terms \['verifier'\]"):
        resolve_rl_recipe(rl_spec, {"reward": {"verifier": 1.0}})
