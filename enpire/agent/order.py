"""The order of agent calls, replies, closes and observations: `determinism: strict | fast`.

Why: with several stations, which results an agent has seen when it proposes depends on which
trial happened to finish first. Under `fast` (the old behaviour) an agent proposes from whatever
has arrived, so two sessions of one spec and seed diverge after a few iterations and a
researcher cannot tell an effect from scheduling noise.

`strict` makes every proposal a function of the seed and of results in a logical order:

- iteration `j` is asked of team member `j mod len(team)`, and calls start in index order; a member
  whose `batch` is B > 1 (a screen of B candidates per call) owns B consecutive indices per round: the
  layout (member, first index, size) of every call is fixed by the team before anything runs, and a
  reply with fewer proposals than its slots leaves the rest of its indices unused (skipped, not
  iterations: the idea tree's numbering has a gap there);
- the proposal of iteration `j` is made from the iterations with index `< j - lag` only (its
  *horizon*), all of them closed before the call starts; the agent is told (`observe`) of its own
  iterations below the horizon just before that call, never in between;
- replies are taken in index order; a failed call is asked again for the same index;
- iterations close in index order, and their trials pool at close in trial order, so the keep
  decision and /done are judged on the same evidence in every run.

`lag` (default twice the fleet, or twice a round of batches when that is more) is how many
iterations may be open while an agent proposes: it keeps stations fed while staying a fixed, logical
distance behind the newest result. When calls start is left to timing (enpire.agent.pipeline): it
changes how long stations wait, never what a call is asked or answers.
What strict cannot make repeatable: caps measured by a clock (`wall_clock_s`, and which trial
`robot_seconds`' worst-case reservation stops first) and trainer timings; docs/loop.md says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from enpire.agent.api import AgentReply
from enpire.records import IterationSummary

if TYPE_CHECKING:
    from enpire.agent.team import Member

MODES = ("strict", "fast")


@dataclass
class CallOrder:
    """Bookkeeping of the strict order (a no-op shell under `fast`)."""

    mode: str
    lag: int
    sizes: tuple[int, ...] = (1,)  # strict layout: slots per call of each team member, in team order
    base: int = 0  # index where the layout's first round starts (a resume restarts it there)
    next_call: int = 0  # index of the next call to start
    next_take: int = 0  # index of the next reply to take
    retry: list[int] = field(default_factory=list)  # indices whose call failed: asked again first
    replies: dict[int, tuple[Member, AgentReply, float]] = field(default_factory=dict)  # + when the call began
    closed: set[int] = field(default_factory=set)
    closed_below: int = 0  # every index < this is closed
    deferred: dict[str, list[IterationSummary]] = field(default_factory=dict)  # member -> not yet observed

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"determinism: got {self.mode!r}; expected one of {list(MODES)}")

    @property
    def strict(self) -> bool:
        return self.mode == "strict"

    def restart_at(self, index: int, closed: set[int]) -> None:
        """A resumed session: numbering continues at `index`; `closed` are the indices already closed."""
        self.next_call = self.next_take = self.base = index
        self.closed = set(closed)
        self.closed_below = 0
        self._advance()

    # ---- calls -------------------------------------------------------------------------------
    def next_index(self) -> int:
        return min(self.retry) if self.retry else self.next_call

    def slot(self, index: int) -> tuple[int, int]:
        """(team position, slots) of the call that starts at `index` (a call start of the layout)."""
        offset = (index - self.base) % sum(self.sizes)
        for position, size in enumerate(self.sizes):
            if offset < size:
                return position, size - offset
            offset -= size
        raise AssertionError("unreachable: offset < sum(sizes)")

    def horizon(self, index: int) -> int:
        """Iterations with an index below this are what the proposal of `index` is made from."""
        return max(0, index - self.lag)

    def may_call(self, index: int) -> bool:
        return self.closed_below >= self.horizon(index)

    def started(self, index: int) -> None:
        if self.retry and index == min(self.retry):
            self.retry.remove(index)
        else:
            self.next_call = index + self.slot(index)[1]

    def observations(self, member: str, index: int) -> list[IterationSummary]:
        """The member's own closed iterations below the horizon of `index`, in index order, taken once."""
        waiting = self.deferred.get(member, [])
        due = sorted((s for s in waiting if s.index < self.horizon(index)), key=lambda s: s.index)
        self.deferred[member] = [s for s in waiting if s.index >= self.horizon(index)]
        return due

    def leftovers(self) -> dict[str, list[IterationSummary]]:
        """Everything not yet observed, per member in index order (told at the session's end)."""
        out = {m: sorted(v, key=lambda s: s.index) for m, v in self.deferred.items() if v}
        self.deferred = {}
        return out

    # ---- replies -----------------------------------------------------------------------------
    def arrived(self, index: int, member: Member, reply: AgentReply, called_at: float) -> None:
        self.replies[index] = (member, reply, called_at)

    def in_order(self) -> list[tuple[int, Member, AgentReply, float]]:
        """Replies that may be taken now: the next index and the consecutive ones after it, with when each call
        began (the iteration's start when the proposal is rejected)."""
        out = []
        while self.next_take in self.replies:
            member, reply, called_at = self.replies.pop(self.next_take)
            out.append((self.next_take, member, reply, called_at))
            if reply.proposal is None:  # asked again for the same index; later replies wait for it
                self.retry.append(self.next_take)
                break
            self.next_take += self.slot(self.next_take)[1]
        return out

    def skip(self, index: int) -> None:
        """A slot its call's reply left unused: closed without an iteration (the numbering has a gap)."""
        self.closed.add(index)
        self._advance()

    # ---- closes ------------------------------------------------------------------------------
    def close(self, summary: IterationSummary, member: str | None) -> None:
        self.closed.add(summary.index)
        self._advance()
        if member is not None and self.strict:  # fast: the loop tells the agent at once
            self.deferred.setdefault(member, []).append(summary)

    def _advance(self) -> None:
        while self.closed_below in self.closed:
            self.closed_below += 1
