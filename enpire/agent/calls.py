"""Starting agent calls: when, of whom, and for how many proposals (the loop's side of the agent seam).

A slow agent (an LLM answers in seconds; a drawer trial takes a quarter of a second of wall time on four
stations) cannot feed a fleet one candidate per call. Two things keep stations busy while agents think:

- **batches**: an agent whose `batch` is B proposes a screen of B candidates per call (`state.slots`), each
  checked and run as its own iteration (enpire.agent.protocol fills one with the screening protocol's
  next steps: re-evaluations of candidates still plausible for /done first, then fresh samples);
- **asking ahead**: a call starts while the queued trials would not outlast it (Pipeline: the fleet's
  recent trial rate times the member's mean call time), not only once the queue is nearly empty.

Under `determinism: strict` the call layout (which member, which indices, how many slots) is fixed by the
team (enpire.agent.order) and a call sees only the history below its horizon: timing decides when a call
starts, never what it is asked, so a seed still fixes every proposal and trial.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from enpire.agent.api import Budgets, ResearchState

if TYPE_CHECKING:
    from enpire.agent.evidence import EvidenceStore
    from enpire.agent.order import CallOrder
    from enpire.agent.team import Member, Team
    from enpire.agent.tree import IdeaTree
    from enpire.fleet.budget import BudgetLedger
    from enpire.fleet.executor import Executor
    from enpire.fleet.scheduler import Scheduler
    from enpire.fleet.trainer_slot import TrainerSlot
    from enpire.spec.model import ExperimentSpec

RATE_WINDOW_S = 10.0  # the trial rate a call is planned against: trials finished over the last seconds
MARGIN = 1.25  # queue a little more than the expected drain: call times and trial times vary


class Pipeline:
    """How many queued trials keep the fleet busy through one more call of a member."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self.finished: deque[float] = deque()  # when recent trials came back

    def note_trial(self, now: float) -> None:
        self.finished.append(now)
        while self.finished and self.finished[0] < now - self.window_s:
            self.finished.popleft()

    def rate(self, now: float) -> float:
        """Trials per second the fleet finished recently (0 before two have)."""
        if len(self.finished) < 2:
            return 0.0
        return len(self.finished) / max(1e-3, min(self.window_s, now - self.finished[0]))

    def ahead(self, member: Member, stations: int, now: float) -> float:
        """Trials that must be queued for a call of `member` to wait: what the fleet runs during its mean call
        (at least one per working station, the old rule, before anything is known)."""
        latency = member.busy_s / member.calls if member.calls else 0.0
        return max(float(stations), MARGIN * self.rate(now) * latency)


def strict_lag(fleet: int, sizes: tuple[int, ...]) -> int:
    """determinism=strict: iterations a proposal may be behind the newest one: twice the fleet, or twice a
    round of calls (every member's batch) when that is more, so every member can think while one round runs."""
    return 2 * max(fleet, sum(sizes))


class AgentCalls:
    """The loop's agent calls (mixed into enpire.loop.Session, which owns the state named below)."""

    spec: ExperimentSpec
    team: Team
    tree: IdeaTree
    ledger: BudgetLedger
    order: CallOrder
    scheduler: Scheduler
    executor: Executor
    trainer: TrainerSlot
    schema: dict[str, Any]
    pipeline: Pipeline
    evidence: EvidenceStore | None

    def _evident(self, member: Member, state: ResearchState, horizon: int | None = None) -> ResearchState:
        """`state` with the recent trials' evidence, for an agent that asks for it."""
        if self.evidence is None or not getattr(member.agent, "wants_evidence", False):
            return state
        return dataclasses.replace(state, evidence=self.evidence.view(horizon))

    def _budgets(self, horizon: int | None = None) -> Budgets:
        used, limits = self.ledger.snapshot()
        if horizon is not None:  # strict: what the visible history spent, not what happens to have finished
            seen = [it for it in self.tree.iterations if it.index < horizon and it.decision != "cancelled"]
            used.update(iterations=float(len(seen)), trials=float(sum(it.trials for it in seen)),
                        robot_seconds=sum(it.robot_seconds for it in seen), tokens=float(sum(it.tokens for it in seen)))
        return Budgets(used=used, limits=limits)

    def _may_ask(self, member: Member) -> bool:
        """Is a new proposal worth a call of `member` now? Not while the queued trials outlast its call, nor
        once no trial of it could be dispatched (the trials and robot_seconds caps, counting queued work)."""
        queued = self.scheduler.undispatched()
        stations = max(1, self.spec.fleet - len(self.executor.faulty()))
        if queued >= self.pipeline.ahead(member, stations, time.monotonic()) \
                and not self.trainer.wants_work(self.scheduler.queue):  # an idle trainer asks for a recipe
            return False  # enough queued work: ask later, with more results known
        return self.ledger.blocking_iteration() is None and self.ledger.blocking_proposal(queued) is None

    def _iterations_left(self) -> int:
        ledger = self.ledger
        return int(ledger.cap("iterations") - ledger.used["iterations"] - ledger.reserved["iterations"] + 1e-9)

    def _start_calls(self) -> None:
        if self.order.strict:
            return self._start_calls_in_order()
        for member in self.team.ready():
            if not self._may_ask(member):
                continue
            slots = max(1, min(int(getattr(member.agent, "batch", 1)), self._iterations_left()))
            self.ledger.reserve("iterations", slots)
            state = self._evident(member, self.tree.state(member.agent.branch, self._budgets(), self.schema,
                                                          slots=slots))
            self.team.call(member, state, time.monotonic(), slots=slots)

    def _start_calls_in_order(self) -> None:
        """determinism=strict: the call at index j is its layout member's (enpire.agent.order), for the slots
        the layout gives it, from the history below its horizon."""
        while True:
            index = self.order.next_index()
            position, slots = self.order.slot(index)
            member = self.team.members[position]
            if member.call is not None or member.outstanding >= member.max_outstanding \
                    or not self.order.may_call(index) or not self._may_ask(member):
                return
            for summary in self.order.observations(member.name, index):
                member.agent.observe(summary)
            horizon = self.order.horizon(index)
            self.ledger.reserve("iterations", slots)
            state = self._evident(member, self.tree.state(member.agent.branch, self._budgets(horizon), self.schema,
                                                          horizon=horizon, slots=slots), horizon)
            self.team.call(member, state, time.monotonic(), index=index, slots=slots)
            self.order.started(index)
