"""Baselines for the search benchmark: uniform random search and Optuna TPE.

Same parameter space and same evaluation protocol as the search agent (enpire.agent.protocol:
re-evaluation before trust, noise-aware incumbent, /done confirmation); only the source of
fresh candidates differs.
"""

from __future__ import annotations

import logging

import optuna

from enpire.agent.api import ResearchState
from enpire.agent.protocol import ProtocolAgent, Stats
from enpire.agent.space import candidate_key, canonical_params, describe_change
from enpire.spec.model import AgentSpec, ExperimentSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger(__name__)


class RandomSearchAgent(ProtocolAgent):
    """Fresh candidates uniform over every parameter's range."""

    kind = "random"

    def _fresh(self, state: ResearchState) -> dict:
        params = {p.name: float(self.rng.uniform(p.low, p.high)) for p in self.spec.policy.params}
        params = canonical_params(params, self.spec.policy)
        inc = self.incumbent()
        change = describe_change(params, inc[1].params if inc else self.spec.policy.defaults(), self.spec.policy)
        return self._proposal(params, None, self.config.trials_per_candidate,
                              f"Uniform random sample ({change}): a baseline that assumes nothing about the space.")


class TPEAgent(ProtocolAgent):
    """Fresh candidates from Optuna's TPE sampler (ask/tell); the value told is the smoothed success rate."""

    kind = "tpe"

    def __init__(self, spec: ExperimentSpec, config: AgentSpec, index: int, branch: str, seed: int) -> None:
        super().__init__(spec, config, index, branch, seed)
        sampler = optuna.samplers.TPESampler(seed=int(seed) * 1000 + index, n_startup_trials=5)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.distributions = {
            p.name: optuna.distributions.FloatDistribution(p.low, p.high, log=p.scale == "log" and p.low > 0)
            for p in spec.policy.params
        }
        self.asked: dict[str, optuna.trial.Trial] = {}

    def _fresh(self, state: ResearchState) -> dict:
        trial = self.study.ask(self.distributions)
        params = canonical_params(dict(trial.params), self.spec.policy)
        key = candidate_key({"kind": "params", "params": params})
        if key in self.asked or key in self.stats:  # duplicate sample: tell it the known value, ask again once
            self.study.tell(trial, self.stats[key].rate if key in self.stats else 0.0)
            trial = self.study.ask(self.distributions)
            params = canonical_params(dict(trial.params), self.spec.policy)
            key = candidate_key({"kind": "params", "params": params})
        self.asked[key] = trial
        inc = self.incumbent()
        change = describe_change(params, inc[1].params if inc else self.spec.policy.defaults(), self.spec.policy)
        return self._proposal(params, None, self.config.trials_per_candidate,
                              f"TPE sample ({change}): the density of good candidates so far is higher there.")

    def _learn(self, key: str, stats: Stats) -> None:
        trial = self.asked.pop(key, None)
        if trial is not None:
            self.study.tell(trial, stats.rate)
