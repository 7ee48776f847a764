"""Agent kinds -> classes, from the plugins (enpire.plugins: the package's own search, random,
tpe and claude, and any plugin's). Each class is built as cls(spec, config=..., index=i,
branch=name, seed=s). An agent config with `memory_from` has its notebooks read first (enpire.agent.memory:
SpecError naming agent.memory_from when they cannot be)."""

from __future__ import annotations

from enpire import plugins
from enpire.agent import memory
from enpire.agent.api import Agent
from enpire.spec.model import AgentSpec, ExperimentSpec


def make_agent(spec: ExperimentSpec, index: int, seed: int, agent: AgentSpec | None = None) -> Agent:
    """Agent number `index` of the team; `agent` overrides spec.agent (mixed teams)."""
    config = agent or spec.agent
    memory.check(spec, config)  # agent.memory_from: the other session's notebooks exist (read once, cached)
    try:
        cls = plugins.resolve("agents", config.kind)
    except KeyError:
        raise ValueError(f"agent.kind: got {config.kind!r}; expected one of {plugins.names('agents')}") from None
    return cls(spec, config=config, index=index, branch=f"{config.kind}-{index}", seed=seed)
