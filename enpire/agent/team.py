"""The team of agents and their calls in flight.

Agent calls run on threads (a Claude call takes seconds) so they never block the dispatch of
trials. Resources are explicit: at most one call in flight per agent, and at most
`max_outstanding` of an agent's iterations being evaluated at once (the search agent allows
several, so stations keep working on its other candidates while it thinks).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from enpire.agent.api import Agent, AgentReply, ResearchState

log = logging.getLogger(__name__)


@dataclass
class Member:
    agent: Agent
    outstanding: int = 0  # iterations of this agent being evaluated
    failures: int = 0  # consecutive failed calls
    tokens: int = 0
    calls: int = 0
    call: Future | None = None
    call_started: float = 0.0
    call_index: int | None = None  # determinism=strict: the iteration index the call in flight is for
    call_slots: int = 1  # proposals the call in flight may return (iterations reserved for it)
    busy_s: float = 0.0  # seconds spent in calls

    @property
    def name(self) -> str:
        return self.agent.name

    @property
    def max_outstanding(self) -> int:
        return int(getattr(self.agent, "max_outstanding", 1))


@dataclass
class Team:
    members: list[Member]
    pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(self.members)), thread_name_prefix="enpire-agent")

    @classmethod
    def of(cls, agents: list[Agent]) -> Team:
        names = [a.name for a in agents]
        if len(set(names)) != len(names):
            raise ValueError(f"agents: names must be unique; got {names}")
        return cls([Member(a) for a in agents])

    def ready(self) -> list[Member]:
        """Members that may be asked for a proposal now (fewest outstanding first)."""
        free = [m for m in self.members if m.call is None and m.outstanding < m.max_outstanding]
        return sorted(free, key=lambda m: (m.outstanding, m.calls))

    def in_flight(self) -> int:
        return sum(1 for m in self.members if m.call is not None)

    def call(self, member: Member, state: ResearchState, now: float, index: int | None = None,
             slots: int = 1) -> None:
        member.call = self.pool.submit(member.agent.propose, state)
        member.call_started = now
        member.call_index = index
        member.call_slots = slots
        member.calls += 1

    def finished(self, now: float) -> list[tuple[Member, AgentReply]]:
        """Replies of calls that ended; an exception becomes a reply with `error`."""
        out = []
        for m in self.members:
            if m.call is None or not m.call.done():
                continue
            try:
                reply = m.call.result()
            except Exception as error:
                log.exception("agent %s raised in propose()", m.name)
                reply = AgentReply(proposal=None, error=f"agent raised: {error!r}")
            if not isinstance(reply, AgentReply):
                reply = AgentReply(proposal=None, error=f"agent returned {type(reply).__name__}, not AgentReply")
            m.call = None
            m.busy_s += now - m.call_started
            out.append((m, reply))
        return out

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
