"""The agent protocol: what an agent sees of the research, and what it sends back.

An agent never holds a handle on the verifier, the envelope, the budget ledger or the
tracker. It receives a ResearchState (read-only data) and returns an AgentReply whose
`proposal` is validated by the loop against specs/proposal.schema.json (specialised to the
policy's search space). Invalid proposals become `rejected` iterations and the agent is told
why through `observe`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from enpire.records import IterationSummary


@dataclass(frozen=True)
class Budgets:
    used: dict[str, float]
    limits: dict[str, float]

    def remaining(self) -> dict[str, float]:
        return {k: max(0.0, self.limits[k] - self.used.get(k, 0.0)) for k in self.limits}


@dataclass(frozen=True)
class ResearchState:
    """Everything an agent may read when proposing the next experiment."""

    task_name: str
    task_description: str
    policy_kind: str
    action_mode: str
    search_space: dict[str, dict[str, Any]]  # name -> {default, low, high, unit, description, scale}
    goal: str  # the /done goal in words (read-only)
    branch: str
    iterations: tuple[IterationSummary, ...]  # the whole idea tree so far, all branches
    branch_best: dict[str, IterationSummary]  # best kept iteration of each branch
    budgets: Budgets
    proposal_schema: dict[str, Any]  # the JSON Schema a proposal must satisfy
    slots: int = 1  # proposals this call may return (the agent's `batch`): each becomes its own iteration
    # recent trials' records and stills (enpire.agent.evidence.EvidenceView), for agents that ask for it
    # (`wants_evidence = True`); None otherwise
    evidence: Any = None


@dataclass
class AgentReply:
    """An agent call's answer: `proposal`, then (a screen of several candidates, up to `state.slots` in all)
    `more`, each checked on its own and run as its own iteration, in that order."""

    proposal: dict[str, Any] | None  # None when the agent could not produce one
    tokens_in: int = 0
    tokens_out: int = 0
    error: str | None = None  # a failed call (network, deadline); counts toward max_consecutive_failures
    transcript: list[dict[str, Any]] = field(default_factory=list)
    more: list[dict[str, Any]] = field(default_factory=list)  # the rest of a batch (empty: one proposal)

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    @property
    def proposals(self) -> list[dict[str, Any]]:
        return [] if self.proposal is None else [self.proposal, *self.more]


class Agent(Protocol):
    name: str  # e.g. "search-0", "claude-1"
    branch: str
    # optional: `batch` (int, default 1): proposals per call, `max_outstanding` (default 1): iterations at once,
    # `wants_evidence` (bool, default False): the state carries an EvidenceView of recent trials

    def propose(self, state: ResearchState) -> AgentReply: ...

    def observe(self, result: IterationSummary) -> None: ...
