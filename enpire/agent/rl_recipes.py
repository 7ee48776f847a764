"""The search agent's strategy for policy=rl: a small, deterministic search over online-RL recipes.

The first candidate is the policy's own `train` recipe (conf/policy/rl.yaml plus overrides). Each fresh
candidate starts from the incumbent's recipe, warm-starts from the incumbent's checkpoint when the
incumbent was kept (an online learner keeps what it learnt: the next iteration continues it instead of
starting over), and applies the next move of a fixed list; the first move is none (pure continuation),
the others change one hyperparameter or reward weight. Every value stays inside the policy's bounds
(`policy.train.bounds`), so the search never proposes a recipe the intake would reject.

Each rl candidate asks for `rl_trials_per_candidate` trials (agent option, default 32; at least the agent's
`trials_per_candidate`): its learner learns across them. A recipe whose result is consistent with the /done
goal is re-evaluated (the trainer slot continues its learner from the candidate's latest checkpoint). Once
the trainer budget cannot fit another job, the incumbent is re-evaluated instead (its kept checkpoint runs
as it is). Deterministic: the proposals depend only on the results seen.
"""

from __future__ import annotations

import math
from typing import Any

from enpire.agent.api import AgentReply, ResearchState
from enpire.agent.bc_recipes import consistent_with_goal, lcb_incumbent, recipe_results, trainer_exhausted
from enpire.agent.space import candidate_key
from enpire.spec.model import AgentSpec, ExperimentSpec

# (recipe key, how) applied to the incumbent's recipe, in order, cycling; "reward.<term>" scales a reward weight
MOVES: tuple[tuple[str, Any], ...] = (
    ("none", None), ("learning_rate", 3.0), ("utd_ratio", 2.0), ("action_scale", 2.0), ("demo_ratio", 0.5),
    ("reward.success", 2.0), ("action_scale", 0.5), ("learning_rate", 0.3), ("hidden_sizes", 0.5),
    ("residual", "flip"),
)


def apply_move(recipe: dict[str, Any], key: str, how: Any, bounds: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """The recipe with one move applied, clipped into the policy's bounds."""
    out = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in recipe.items()}

    def clip(name: str, value: float) -> float:
        low, high = bounds.get(name, (-math.inf, math.inf))
        return min(high, max(low, value))

    if key == "none":
        return out
    if key.startswith("reward."):
        term = key.split(".", 1)[1]
        out["reward"][term] = clip("reward", max(out["reward"][term], 0.1) * how)
    elif key == "hidden_sizes":
        out[key] = [int(clip(key, round(h * how))) for h in recipe[key]]
    elif key == "residual":
        out[key] = not bool(recipe[key])
    elif isinstance(recipe[key], int) and not isinstance(recipe[key], bool):
        out[key] = int(clip(key, round(recipe[key] * how)))
    else:
        out[key] = float(clip(key, float(recipe[key]) * how))
    return out


class RlRecipeSearch:
    """Proposes rl recipes for one search agent (see module docstring)."""

    def __init__(self, spec: ExperimentSpec, config: AgentSpec) -> None:
        from enpire.policy.rl_recipe import policy_bounds, resolve_rl_recipe

        self.spec, self.config = spec, config
        self.base = resolve_rl_recipe(spec, None)
        self.bounds = policy_bounds(dict(spec.policy.train))
        self.recipes: dict[str, dict[str, Any]] = {}  # candidate key -> recipe this agent proposed
        self.moves_tried = 0
        self.z = float(config.get("noise_z", 1.0))
        # an online learner learns across its candidate's trials: one-trial screens would stop it after one
        self.trials = max(int(config.trials_per_candidate), int(config.get("rl_trials_per_candidate", 32)))

    def propose(self, state: ResearchState) -> AgentReply:
        tried = {k: v for k, v in recipe_results(state, "rl", self.recipes).items() if v[1] > 0}
        inc = lcb_incumbent(tried, self.z)
        no_trainer = trainer_exhausted(state, len(tried))
        if inc is not None:
            key, (s, n, index, _kept) = inc
            promising = consistent_with_goal(s, n, self.spec.done.min_success_rate)
            if promising or no_trainer:
                trials = self.config.reevaluate_trials if promising else self.trials
                why = ("its success rate is consistent with the /done goal" if promising else
                       "no trainer budget is left for another learner")
                return self._reply(self.recipes[key], index, trials,
                                   f"Re-evaluate the best rl recipe so far ({s:.0f}/{n}) because {why}; its learner "
                                   "continues from the candidate's latest checkpoint.")
        if inc is None and candidate_key({"kind": "rl", "recipe": self.base}) not in self.recipes:
            return self._reply(self.base, None, self.trials,
                               "Train the policy's own online-RL recipe (SAC from demonstrations); expect it to "
                               "improve on its scripted starting point as it learns from the stations' trials.")
        recipe, parent = (self.recipes[inc[0]], inc[1][2]) if inc is not None else (self.base, None)
        warm = inc[1][2] if inc is not None and inc[1][3] else None
        for _ in range(len(MOVES)):
            name, move = MOVES[self.moves_tried % len(MOVES)]
            self.moves_tried += 1
            candidate = {**apply_move(recipe, name, move, self.bounds), "warm_start": warm}
            if candidate_key({"kind": "rl", "recipe": candidate}) not in self.recipes:
                break
        change = "no change" if name == "none" else f"{name} x{move}" if name != "residual" else "residual flipped"
        start = f"warm-started from iteration {warm}'s kept checkpoint" if warm is not None else "a fresh learner"
        return self._reply(candidate, parent, self.trials,
                           f"Continue online RL with {change} on the incumbent's recipe, {start}; expect a higher "
                           "success rate than the incumbent.")

    def _reply(self, recipe: dict[str, Any], parent: int | None, trials: int, hypothesis: str) -> AgentReply:
        self.recipes[candidate_key({"kind": "rl", "recipe": recipe})] = dict(recipe)
        return AgentReply(proposal={"hypothesis": hypothesis, "parent": parent, "trials": int(trials),
                                    "candidate": {"kind": "rl", "recipe": dict(recipe)}})
