"""Robots busy while agents think: confirmation trials of the leading candidate (`idle_stations: confirm`).

An agent that answers in seconds (an LLM) leaves stations idle between its proposals even with batches and
asking ahead (enpire.agent.calls). With `idle_stations: confirm` and `determinism: fast`, a station that is idle
while every agent is thinking and nothing is queued runs one more trial of the leading candidate: the one
with the highest 95% lower bound on success (enpire.track.confidence), the candidate /done would be judged on.
Those trials are real, verified trials, charged as trials and robot-seconds like any; they belong to a
confirmation iteration of the pseudo-agent `confirm` (its hypothesis says so, its parent is the candidate's
latest iteration), so the idea tree, MLflow and the report show them for what they are, and they pool into
the candidate's success rate: they can confirm it to /done or bring its rate down. A confirmation iteration
grows while the agents think (at most `MAX_TRIALS` trials) and closes like any other.

`determinism: strict` ignores the setting: what runs there must not depend on when an agent answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from enpire.agent.team import Member

if TYPE_CHECKING:
    from enpire.agent.api import ResearchState
    from enpire.records import Evaluation, IterationSummary
    from enpire.spec.model import ExperimentSpec
    from enpire.track.confidence import Confirmed

AGENT = "confirm"
MAX_TRIALS = 16  # trials of one confirmation iteration before it closes (a new one may follow)
SCAN_LIMIT = 200  # candidates scanned for a leader before one has the evidence to be the confirmed best


@dataclass
class ConfirmAgent:
    """The pseudo-agent confirmation iterations belong to; the loop asks it nothing."""

    name: str = AGENT
    branch: str = AGENT

    def propose(self, state: ResearchState) -> Any:
        raise RuntimeError("the confirm pseudo-agent is never called")

    def observe(self, result: IterationSummary) -> None:
        """Confirmation results reach the real agents through the shared idea tree."""


def leader(pools: dict[str, list[bool]]) -> Confirmed | None:
    """Before any candidate has the evidence to be "best" (confidence.MIN_TRIALS), the one with the highest lower
    bound among those tried at all (early in a session, when the pools are few; None past SCAN_LIMIT of them)."""
    from enpire.track.confidence import Confirmed, lower_bound

    if not pools or len(pools) > SCAN_LIMIT:
        return None
    key = max((k for k, v in pools.items() if v), key=lambda k: (lower_bound(sum(pools[k]), len(pools[k])),
                                                                 len(pools[k])), default=None)
    return None if key is None else Confirmed(key, sum(pools[key]), len(pools[key]))


class IdleFill:
    """Decides, each pass of the loop, how many confirmation trials to add and of which candidate."""

    def __init__(self, spec: ExperimentSpec) -> None:
        wanted = str(dict(spec.resolved).get("idle_stations", "wait"))
        self.enabled = wanted == "confirm" and spec.determinism == "fast"
        self.member = Member(ConfirmAgent())
        self.open: Evaluation | None = None  # the confirmation iteration that can still grow
        self.trials = 0  # confirmation trials added this session
        self.baselined = False  # the untuned baseline was run while the first calls were out

    def proposal(self, best: Confirmed | None, iterations: list[Any], idle: int) -> dict[str, Any] | None:
        """A confirmation proposal of `best` for `idle` trials, or None (nothing leads yet)."""
        if best is None:
            return None
        latest = next((it for it in reversed(iterations) if it.candidate_id == best.key), None)
        if latest is None:
            return None
        return {"hypothesis": f"Confirmation trials of the leading candidate {best.key[:12]} "
                              f"({best.successes}/{best.trials} so far) while the agents think "
                              "(idle_stations=confirm).",
                "parent": latest.index, "trials": min(idle, MAX_TRIALS), "candidate": latest.candidate}

    def baseline(self, spec: ExperimentSpec, idle: int) -> dict[str, Any] | None:
        """Before anything has run (the agents' first calls): the scripted policy's untuned baseline, once; the
        agents' own proposals of it pool with these trials."""
        if self.baselined or spec.policy.kind != "scripted":
            return None
        from enpire.agent.space import canonical_params

        self.baselined = True
        return {"hypothesis": "The untuned baseline (the policy's default parameters), run while the agents think "
                              "(idle_stations=confirm): it anchors the first comparisons.",
                "parent": None, "trials": min(idle, MAX_TRIALS),
                "candidate": {"kind": "params", "params": canonical_params(spec.policy.defaults(), spec.policy)}}

    def grow(self, best: Confirmed | None, idle: int) -> int:
        """Trials added to the open confirmation iteration (0 when there is none, it is full, or the lead
        changed: a new iteration then starts for the new leader)."""
        ev = self.open
        if ev is None or best is None or ev.key != best.key or ev.trials_wanted >= MAX_TRIALS:
            return 0
        more = min(idle, MAX_TRIALS - ev.trials_wanted)
        ev.trials_wanted += more
        self.trials += more
        return more

    def tick(self, session: Any) -> bool:
        """One pass of the loop (enpire.loop.Session): add confirmation trials when stations idle while every
        agent thinks; True when trials were added (the loop dispatches them at once)."""
        scheduler, ledger = session.scheduler, session.ledger
        if scheduler.undispatched() or not session.team.in_flight() or ledger.blocking_proposal(0) is not None:
            return False
        idle = min(len(session.executor.idle()), ledger.trials_left(0))
        if idle <= 0:
            return False
        if self.open is not None and self.open not in scheduler.queue:
            self.open = None  # it closed: the next confirmation is a new iteration
        best = session._best() or leader(session.tree.pools)
        if self.grow(best, idle):
            return True
        if ledger.blocking_iteration() is not None:
            return False
        proposal = self.proposal(best, session.tree.iterations, idle) if best is not None else \
            self.baseline(session.spec, idle)
        if proposal is None:
            return False
        index = session.next_index
        session._accept(self.member, proposal, index, 0, [], None)
        self.open = next((ev for ev in scheduler.queue if ev.index == index), None)
        if self.open is not None:
            self.trials += self.open.trials_wanted
        return self.open is not None
