"""The search agent's strategies for policy families it cannot tune by parameters: bc recipes and given code.

`policy=bc` (BcRecipeSearch): a small, deterministic coordinate search over training recipes.
The first candidate is the policy's own `train` recipe (conf/policy/bc.yaml plus overrides); each
fresh candidate applies the next move of a fixed list (more epochs, wider or narrower network,
lower or higher learning rate, more demonstrations, demos only) to the incumbent's recipe, so
a move that helped is built upon. Re-evaluation follows the shared protocol's idea: a recipe
whose first result is consistent with the /done goal is re-evaluated (no new training: the loop
reuses the checkpoint of an identical recipe); once the trainer budget cannot fit another job the
incumbent is re-evaluated instead of proposing recipes nobody could train (a job's length is estimated
as trainer seconds used / recipes trained, as the trainer slot does with its last job). Demonstrations come
from the task's scripted baseline and the session's successful scripted trials
(enpire.policy.trainer.train_candidate handles both).

`policy=code` (GivenSource): the search agent cannot write code. With `policy.source=FILE` the
session's first candidate is that file (enpire.policy.code.code_candidate_from_spec), and every
later proposal re-evaluates it (its trials pool: the same source is the same candidate) until
/done or the budget ends the session. A source whose evaluation crashed is not re-run: the agent
replies with an error naming the crash, and the loop's `max_consecutive_failures` ends the
session. Without a source the agent says so (error), for the same reason.
"""

from __future__ import annotations

import math
from typing import Any

from enpire.agent.api import AgentReply, ResearchState
from enpire.agent.space import candidate_key, smoothed_rate, standard_error
from enpire.spec.model import AgentSpec, ExperimentSpec

# (recipe key, how) applied to the incumbent's recipe, in order
MOVES: tuple[tuple[str, Any], ...] = (
    ("epochs", 2.0), ("hidden_sizes", 2.0), ("learning_rate", 0.3), ("demos", 2.0),
    ("learning_rate", 3.0), ("hidden_sizes", 0.5), ("source_trials", "demos"), ("epochs", 0.5),
)


def apply_move(recipe: dict[str, Any], key: str, how: Any) -> dict[str, Any]:
    """The recipe with one move applied, kept inside the proposal schema's ranges."""
    out = dict(recipe)
    if key == "hidden_sizes":
        out[key] = [int(min(1024, max(4, round(h * how)))) for h in recipe[key]]
    elif key == "epochs":
        out[key] = int(min(500, max(1, round(recipe[key] * how))))
    elif key == "demos":
        out[key] = int(min(10000, max(1, round(recipe[key] * how))))
    elif key == "learning_rate":
        out[key] = float(min(1.0, recipe[key] * how))
    else:
        out[key] = how
    return out


def lcb_incumbent(tried: dict[str, tuple[Any, ...]], z: float) -> tuple[str, tuple[Any, ...]] | None:
    """The recipe with the best smoothed success rate less `z` standard errors (then the most trials), among
    `tried`: candidate key -> (pooled successes, pooled trials, ...); bc and rl recipe searches share it."""
    return max(tried.items(), key=lambda kv: (smoothed_rate(kv[1][0], kv[1][1])
                                              - z * standard_error(kv[1][0], kv[1][1]), kv[1][1]), default=None)


def recipe_results(state: ResearchState, kind: str,
                   recipes: dict[str, dict[str, Any]]) -> dict[str, tuple[float, int, int, bool]]:
    """candidate key -> (pooled successes, pooled trials, latest iteration, ever kept) of the `kind` candidates
    (bc or rl) not rejected; each one's recipe goes into `recipes`. The bc and rl recipe searches share it."""
    out: dict[str, tuple[float, int, int, bool]] = {}
    for it in state.iterations:
        if it.candidate.get("kind") == kind and it.candidate_id and it.decision != "rejected":
            kept = it.decision == "keep" or out.get(it.candidate_id, (0.0, 0, 0, False))[3]
            out[it.candidate_id] = (it.candidate_success_rate * it.candidate_trials, it.candidate_trials, it.index,
                                    kept)
            recipes.setdefault(it.candidate_id, dict(it.candidate.get("recipe") or {}))
    return out


def trainer_exhausted(state: ResearchState, trained: int) -> bool:
    """True when the trainer budget left cannot fit another job of the mean size so far (the slot would refuse
    it); each of the `trained` distinct recipes was trained once."""
    left = state.budgets.remaining().get("trainer_seconds", math.inf)
    per_job = state.budgets.used.get("trainer_seconds", 0.0) / trained if trained else 0.0
    return trained > 0 and left < max(per_job, 1e-6)


def consistent_with_goal(successes: float, trials: int, goal: float) -> bool:
    """Is a pooled rate within two standard errors of the /done goal (worth re-evaluating, not changing)?"""
    return bool(trials) and successes / trials >= goal - 2.0 * math.sqrt(goal * (1 - goal) / trials)


class BcRecipeSearch:
    """Proposes bc recipes for one search agent (see module docstring)."""

    def __init__(self, spec: ExperimentSpec, config: AgentSpec) -> None:
        from enpire.policy.recipe import resolve_recipe

        self.spec, self.config = spec, config
        self.base = resolve_recipe(spec, None)
        self.recipes: dict[str, dict[str, Any]] = {}  # candidate key -> recipe this agent proposed
        self.moves_tried = 0
        self.z = float(config.get("noise_z", 1.0))

    def propose(self, state: ResearchState) -> AgentReply:
        results = recipe_results(state, "bc", self.recipes)
        tried = {k: v for k, v in results.items() if v[1] > 0}
        inc = lcb_incumbent(tried, self.z)
        no_trainer = trainer_exhausted(state, len(tried))
        if inc is not None:
            key, (s, n, index, _kept) = inc
            promising = consistent_with_goal(s, n, self.spec.done.min_success_rate)
            if promising or no_trainer or self.moves_tried >= len(MOVES):
                trials = self.config.reevaluate_trials if promising else self.config.trials_per_candidate
                why = ("its success rate is consistent with the /done goal" if promising else
                       "no trainer budget or recipe move is left")
                return self._reply(self.recipes[key], index, trials,
                                   f"Re-evaluate the best recipe so far ({s:.0f}/{n}) because {why}; "
                                   "its checkpoint is reused, no training.")
        recipe, parent, how = self.base, None, "the policy's own training recipe"
        if inc is not None or candidate_key({"kind": "bc", "recipe": self.base}) in self.recipes:
            if inc is not None:  # build on the incumbent; else on the base recipe still being evaluated
                recipe, parent = self.recipes[inc[0]], inc[1][2]
            while self.moves_tried < len(MOVES):
                name, move = MOVES[self.moves_tried]
                self.moves_tried += 1
                candidate = apply_move(recipe, name, move)
                if candidate_key({"kind": "bc", "recipe": candidate}) not in results:
                    how = f"{name} {recipe[name]} -> {candidate[name]} on the incumbent's recipe"
                    recipe = candidate
                    break
        return self._reply(recipe, parent, self.config.trials_per_candidate,
                           f"Train a behaviour-cloning policy with {how}; expect a higher success rate than "
                           "the incumbent recipe.")

    def _reply(self, recipe: dict[str, Any], parent: int | None, trials: int, hypothesis: str) -> AgentReply:
        self.recipes[candidate_key({"kind": "bc", "recipe": recipe})] = dict(recipe)
        return AgentReply(proposal={"hypothesis": hypothesis, "parent": parent, "trials": int(trials),
                                    "candidate": {"kind": "bc", "recipe": dict(recipe)}})


class GivenSource:
    """Re-evaluates the user's policy file for a search agent (see module docstring)."""

    def __init__(self, spec: ExperimentSpec, config: AgentSpec) -> None:
        from enpire.policy.code import code_candidate_from_spec

        self.spec, self.config = spec, config
        given = code_candidate_from_spec(spec)  # FileNotFoundError names policy.source
        self.source = given.source if given is not None else None

    def propose(self, state: ResearchState) -> AgentReply:
        if self.source is None:
            return AgentReply(proposal=None, error="policy=code with agent=search needs policy.source=FILE: "
                                                   "the search agent cannot write code")
        mine = [it for it in state.iterations
                if it.candidate.get("kind") == "code" and it.candidate.get("source") == self.source]
        if mine and mine[-1].decision == "crash":
            return AgentReply(proposal=None, error=f"the given policy source crashed: {mine[-1].reason[:500]}")
        if mine and mine[-1].decision == "rejected":  # by the dry check or the twin: the same file fails the same way
            return AgentReply(proposal=None, error=f"the given policy source was rejected: {mine[-1].reason[:500]}")
        last = mine[-1] if mine else None
        hypothesis = ("Evaluate the user's policy file (policy.source) as given." if last is None else
                      f"Re-evaluate the user's policy file ({last.candidate_success_rate * last.candidate_trials:.0f}"
                      f"/{last.candidate_trials} so far): the search agent cannot edit code, so more trials of "
                      "it are the only way toward /done.")
        return AgentReply(proposal={
            "hypothesis": hypothesis, "parent": last.index if last else None,
            "trials": int(self.config.trials_per_candidate if last is None else self.config.reevaluate_trials),
            "candidate": {"kind": "code", "source": self.source}})


def strategy_for(spec: ExperimentSpec, config: AgentSpec) -> BcRecipeSearch | GivenSource | None:
    """The search agent's strategy for non-parametric policy families; None for scripted policies."""
    if spec.policy.kind == "bc":
        return BcRecipeSearch(spec, config)
    if spec.policy.kind == "code":
        return GivenSource(spec, config)
    return None
