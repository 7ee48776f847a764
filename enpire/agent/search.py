"""The offline research agent: cross-entropy search with an adaptive step, one branch per agent.

Strategy (config `conf/agent/search.yaml`), in the policy's parameter space scaled to [0, 1]:

- Sampling: a fresh candidate is drawn from N(mean, step^2) per parameter, clipped to the range.
  The first candidate of branch 0 is the untuned baseline (the policy's defaults). While the
  incumbent is clearly below the /done goal, the first `population` fresh candidates come from
  CEM's broad initial distribution (uniform over the ranges) instead.
- Mean update (steady-state CEM, no generation barrier so stations never wait on a
  generation): after each fresh result the mean moves to the average of the elites, the best
  `elite_frac` of the last `population` fresh candidates plus the incumbent.
- Adaptive step: a fresh candidate that beats the incumbent's estimate widens the step by
  1.25; one that does not narrows it by 0.9 (a 1/5th-success-rule flavour), kept within
  [`min_std`, 0.5] of each range.
- Noise-aware trust and re-evaluation: see enpire.agent.protocol (shared with the baselines).
- Borrowing: with chance `borrow_prob` a fresh proposal recentres the branch on another
  branch's best recipe when it beats this branch's incumbent beyond noise; recorded in
  `borrowed_from`.
- Memory (`memory_from`, enpire.agent.memory): the recipes of another session's notebook, mapped onto this
  search space, are proposed before anything else (the best first, dealt out over the team; each carries
  `borrowed_from` = memory:<session>/<branch>), and every branch's mean starts at the best of them.
- policy=bc / policy=code: see enpire.agent.bc_recipes (recipe search; re-evaluating a given file);
  policy=rl: enpire.agent.rl_recipes (online-RL recipe search, warm-starting from kept checkpoints).
- Deterministic for a seed: all randomness comes from one numpy Generator seeded by
  (seed, agent index), so the same results in the same order give the same proposals.
"""

from __future__ import annotations

import math

import numpy as np

from enpire.agent import memory
from enpire.agent.api import AgentReply, ResearchState
from enpire.agent.bc_recipes import strategy_for
from enpire.agent.protocol import ProtocolAgent, Stats
from enpire.agent.ranking import Ranking
from enpire.agent.rl_recipes import RlRecipeSearch
from enpire.agent.space import beats, candidate_key, canonical_params, describe_change, from_unit, to_unit
from enpire.spec.model import AgentSpec, ExperimentSpec

GROW, SHRINK, MAX_STD = 1.25, 0.9, 0.5


def shaped(s: Stats) -> float:
    """The surrogate CEM ranks by: raw success fraction, the failed share credited with how close those
    trials' final task state came to the done thresholds (`Stats.progress`, 0..1). On one- or two-trial
    screens 0/1 successes say little; "the drawer opened 0.12 of 0.15 m" says which way to move."""
    raw = s.successes / s.trials if s.trials else 0.0
    return raw + (1.0 - raw) * 0.9 * s.progress


class SearchAgent(ProtocolAgent):
    kind = "search"

    def __init__(self, spec: ExperimentSpec, config: AgentSpec, index: int, branch: str, seed: int) -> None:
        super().__init__(spec, config, index, branch, seed)
        self.population = int(config.get("population", 4))
        self.elite_frac = float(config.get("elite_frac", 0.5))
        self.min_std = float(config.get("min_std", 0.02))
        self.borrow_prob = float(config.get("borrow_prob", 0.0))
        self.mean = to_unit(spec.policy.defaults(), spec.policy)
        self.step = np.full(len(spec.policy.params), float(config.get("init_std", 0.25)))
        self.recent: list[str] = []  # fresh candidates in the order their first result came back
        self.proposed_rate: dict[str, float] = {}  # incumbent's estimate when each fresh one was proposed
        self.max_outstanding = max(1, self.population // 2, 2 * self.batch)
        self.fresh_count = 0
        self.strategy = strategy_for(spec, config)  # policy=bc: recipe search; policy=code: the given file
        if spec.policy.kind == "rl":  # policy=rl: online-RL recipe search (enpire.agent.rl_recipes)
            self.strategy = RlRecipeSearch(spec, config)
        self._shaped = Ranking()  # by shaped score (the CEM centre), kept like the incumbent
        found = memory.seeds(spec, config)  # agent.memory_from: another session's recipes, evaluated first
        self.memory_seeds = memory.deal(found, spec, config, index)
        self.memory_centred = bool(found)
        if found:
            self.mean = to_unit(found[0].params, spec.policy)

    def propose(self, state: ResearchState) -> AgentReply:
        if self.strategy is not None:
            return self.strategy.propose(state)
        return super().propose(state)

    def _fresh(self, state: ResearchState) -> dict:
        seed = self._memory_seed()
        if seed is not None:
            return seed
        inc = self.incumbent()
        borrowed = self._maybe_borrow(state, inc)
        if borrowed is not None:
            inc = self.incumbent()
        parent_params = inc[1].params if inc else self.spec.policy.defaults()
        parent_it = inc[1].iteration if inc and inc[1].iteration >= 0 else None
        if self.fresh_count == 0 and self.index == 0 and inc is None:
            params = canonical_params(self.spec.policy.defaults(), self.spec.policy)
            hypothesis = ("Evaluate the untuned baseline (the policy's default parameters) to anchor this branch: "
                          "every later change is judged against it.")
        else:
            broad = self.fresh_count < self.population and inc is not None and \
                inc[1].successes / max(1, inc[1].trials) < self._goal_floor(inc[1].trials)
            for _ in range(20):  # avoid re-proposing a candidate this branch already has
                if broad:  # first generation: CEM's broad initial distribution (uniform over the ranges)
                    u = self.rng.random(self.mean.shape)
                else:
                    u = np.clip(self.mean + self.step * self.rng.standard_normal(self.mean.shape), 0.0, 1.0)
                params = canonical_params(from_unit(u, self.spec.policy), self.spec.policy)
                if candidate_key({"kind": "params", "params": params}) not in self.stats:
                    break
            change = describe_change(params, parent_params, self.spec.policy)
            around = "the borrowed recipe (agent.memory_from)" if self.memory_centred else "the baseline"
            why = (f"the elites of the last {len(self.recent[-self.population:])} candidates lie that way"
                   if self.recent else f"a first step around {around} explores the space")
            best = f"{inc[1].successes:.0f}/{inc[1].trials}" if inc else "none yet"
            if broad:
                why = "the incumbent is below the /done goal, so the first generation explores the whole space"
                how = "first-generation sample, uniform over each range"
            else:
                how = f"CEM sample, step {float(self.step.mean()):.2f} of each range"
            hypothesis = (f"Change {change} ({how}) because {why}; expect a higher success rate than the "
                          f"incumbent ({best}).")
            if borrowed:
                hypothesis = f"Borrow branch {borrowed}'s best recipe and explore around it: " + hypothesis
        self.fresh_count += 1
        key = candidate_key({"kind": "params", "params": params})
        best = self._best_shaped()
        self.proposed_rate[key] = shaped(best) if best else 0.0
        return self._proposal(params, parent_it, self.config.trials_per_candidate, hypothesis, borrowed)

    def _memory_seed(self) -> dict | None:
        """The next borrowed recipe this branch has not evaluated (a resumed session may have), or None."""
        while self.memory_seeds:
            b = self.memory_seeds.pop(0)
            if b.key in self.stats:
                continue
            self.fresh_count += 1
            best = self._best_shaped()
            self.proposed_rate[b.key] = shaped(best) if best else 0.0
            return self._proposal(b.params, None, memory.first_chunk(b, self.spec, self.config.trials_per_candidate),
                                  b.hypothesis(self.spec.task.name, self.spec.robot.name), b.source)
        return None

    def _maybe_borrow(self, state: ResearchState, inc: tuple[str, Stats] | None) -> str | None:
        if self.borrow_prob <= 0 or self.rng.random() >= self.borrow_prob:
            return None
        mine_s, mine_n = (inc[1].successes, inc[1].trials) if inc else (0.0, 0)
        options = []
        for branch, best in sorted(state.branch_best.items()):
            if branch == self.branch or best.candidate.get("kind") != "params":
                continue
            s, n = best.candidate_success_rate * best.candidate_trials, best.candidate_trials
            if beats(s, n, mine_s, mine_n, self.z):
                options.append((s / max(n, 1), branch, best))
        if not options:
            return None
        _, branch, best = max(options, key=lambda t: t[0])
        params = canonical_params(best.candidate["params"], self.spec.policy)
        key = candidate_key({"kind": "params", "params": params})
        self.stats[key] = Stats(params=params, iteration=best.index, trials=best.candidate_trials,
                                successes=best.candidate_success_rate * best.candidate_trials, fresh=False)
        self.mean = to_unit(params, self.spec.policy)
        return branch

    def _best_shaped(self) -> Stats | None:
        """The candidate CEM centres on: best shaped score (the noise-aware incumbent decides /done, not this)."""
        self._refresh_rankings()
        key = self._shaped.best()
        return self.stats[key] if key is not None else None

    def _rank(self, key: str, s: Stats | None, order: int) -> None:
        self._shaped.note(key, (shaped(s), s.trials) if s is not None and s.trials > 0 else None, order)

    def _learn(self, key: str, stats: Stats) -> None:
        if stats.screened_out:  # the twin kept it off the fleet: it says nothing of the step and never pulls the mean
            return
        self.recent.append(key)
        improved = shaped(stats) > self.proposed_rate.get(key, 0.0)
        self.step = np.clip(self.step * (GROW if improved else SHRINK), self.min_std, MAX_STD)
        window = [self.stats[k] for k in self.recent[-self.population:]]
        best = self._best_shaped()
        if best is not None and best not in window:
            window.append(best)
        window.sort(key=shaped, reverse=True)
        elites = window[: max(1, math.ceil(self.elite_frac * len(window)))]
        inc = self.incumbent()
        if inc is not None:  # noise-aware: an elite clearly worse than the incumbent does not pull the mean
            floor = inc[1].lcb(self.z)
            elites = [s for s in elites if s.rate >= floor] or [inc[1]]
        self.mean = np.mean([to_unit(s.params, self.spec.policy) for s in elites], axis=0)
