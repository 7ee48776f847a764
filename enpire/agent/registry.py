"""Agent kinds -> classes. Each class is built as cls(spec, index=i, branch=name, seed=s)."""

from __future__ import annotations

from importlib import import_module

from enpire.agent.api import Agent
from enpire.spec.model import AgentSpec, ExperimentSpec

AGENTS = {
    "search": "enpire.agent.search:SearchAgent",
    "random": "enpire.agent.baselines:RandomSearchAgent",
    "tpe": "enpire.agent.baselines:TPEAgent",
    "claude": "enpire.agent.claude:ClaudeAgent",
}


def make_agent(spec: ExperimentSpec, index: int, seed: int, agent: AgentSpec | None = None) -> Agent:
    """Agent number `index` of the team; `agent` overrides spec.agent (mixed teams)."""
    config = agent or spec.agent
    module, _, cls = AGENTS[config.kind].partition(":")
    return getattr(import_module(module), cls)(spec, config=config, index=index,
                                               branch=f"{config.kind}-{index}", seed=seed)
