"""grid: an offline agent that walks a coordinate grid around the incumbent.

Each fresh candidate changes one parameter of the best candidate so far to one of `points`
evenly spaced values of its range, parameter after parameter (a coordinate search). Re-evaluation,
the incumbent and /done confirmation come from enpire's ProtocolAgent, as for the shipped agents.
Its options (`points`, plus the common agent keys) are checked against schemas/agent.grid.schema.json.
"""

from __future__ import annotations

import numpy as np

from enpire.agent.api import ResearchState
from enpire.agent.protocol import ProtocolAgent
from enpire.agent.space import canonical_params, describe_change
from enpire.spec.model import AgentSpec, ExperimentSpec


class GridAgent(ProtocolAgent):
    kind = "grid"

    def __init__(self, spec: ExperimentSpec, config: AgentSpec, index: int, branch: str, seed: int) -> None:
        super().__init__(spec, config, index, branch, seed)
        self.points = int(config.get("points", 5))
        self.step = index  # agents of one team start on different coordinates

    def _fresh(self, state: ResearchState) -> dict:
        params = self.spec.policy.params
        inc = self.incumbent()
        base = dict(inc[1].params) if inc else self.spec.policy.defaults()
        p = params[self.step % len(params)]
        value = np.linspace(p.low, p.high, self.points)[(self.step // len(params)) % self.points]
        self.step += 1
        candidate = canonical_params({**base, p.name: float(value)}, self.spec.policy)
        change = describe_change(candidate, base, self.spec.policy)
        return self._proposal(candidate, None, self.config.trials_per_candidate,
                              f"Grid step on {p.name} ({change}): one coordinate at a time around the incumbent.")
