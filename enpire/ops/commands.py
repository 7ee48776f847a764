"""What a running session makes of operator commands (enpire.ctl): pause, resume, stop, estop, approvals.

The loop calls `step` once a pass with its status and applies the Commands it gets back; it asks `hold`
before queueing a candidate. Nothing here touches the loop's state: commands are values.
`reset-done` reaches the executor: a station waiting for a person checks its reset again
(enpire.fleet.human_reset). Decisions (docs/reliability.md): `stop` lets trials in flight finish, then the
session ends with
`stopped_by: operator_stop` and exit 0; `estop` has already stopped every robot through the shared flag,
the trials in flight come back `estopped`, and the session ends with `stopped_by: estop` and exit 0 (a person
restarts it with `python -m enpire resume=SESSION_ID` once the cell is safe). Candidates held for approval
when a session ends are recorded as `rejected` ("not approved before the session ended").
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from enpire.ops.control import STARTING, ControlChannel

if TYPE_CHECKING:
    from enpire.agent.team import Member
    from enpire.records import Evaluation
    from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)

STATE_EVERY_S = 0.5
DEFAULTS = {"approve": "none", "control_root": "outputs/control", "poll_s": 0.1, "human_reset": False,
            "human_reset_timeout_s": 3600.0}


@dataclass(frozen=True)
class LoopStatus:
    """What the loop says of itself each pass (published to state.json: ctl status and tests read it)."""

    paused: bool
    stopped_by: str | None
    in_flight: int
    trials: int
    iterations: int
    needs_reset: dict[int, dict[str, Any]] = field(default_factory=dict)  # stations waiting for a person


@dataclass(frozen=True)
class Command:
    """One thing the loop is to do for the operator.

    pause / resume / stop / estop: the loop's own state; queue: run held iteration `ev` of `member` now
    (approved); reject: record held iteration `ev` as rejected with `reason` (its `proposal` as the agent sent it);
    reset_done: a person fixed `station`'s scene (enpire.fleet.human_reset).
    """

    verb: Literal["pause", "resume", "stop", "estop", "queue", "reject", "reset_done"]
    ev: Evaluation | None = None
    member: Member | None = None
    proposal: dict[str, Any] | None = None
    reason: str = ""
    station: int | None = None  # reset_done: the station a person fixed (`reason` says who)


@dataclass
class Held:
    ev: Evaluation
    member: Member
    proposal: dict[str, Any]


def supervision(spec: ExperimentSpec) -> dict[str, Any]:
    return {**DEFAULTS, **dict(spec.resolved.get("supervision") or {})}


def open_channel(spec: ExperimentSpec) -> ControlChannel | None:
    """The control directory, made before the stations start (they map its estop flag) and before the MLflow
    run exists: keyed by the resumed session's id, else by a provisional id that `adopt` links later."""
    sup = supervision(spec)
    key = spec.resume or f"{STARTING}/{os.getpid()}-{time.time_ns()}"
    try:
        return ControlChannel(sup["control_root"], key, float(sup["poll_s"]))
    except Exception:
        log.exception("operator control unavailable for this session")
        return None


class SessionControl:
    def __init__(self, spec: ExperimentSpec, channel: ControlChannel, tracker: Any) -> None:
        self.approve = str(supervision(spec)["approve"])
        assert tracker is not None, "the control channel is keyed by the session's MLflow run id"
        self.channel = channel
        channel.adopt(tracker.run_id)
        self.session_id = tracker.run_id
        tracker.client.set_tag(tracker.run_id, "enpire.control_dir", str(channel.dir))
        self.held: dict[int, Held] = {}
        self.commands = 0
        self._next_state = 0.0
        self._status: LoopStatus | None = None
        log.info("operator control: python -m enpire.ctl pause|resume|stop|estop %s (dir %s)",
                 tracker.run_id, channel.dir)

    # ---- approvals ---------------------------------------------------------------------------
    def hold(self, ev: Evaluation, member: Member, proposal: dict[str, Any]) -> bool:
        """True when `ev` waits for a person (supervision.approve=code and agent-written code). The loop
        then counts it as outstanding for `member` (it keeps the session alive while it waits)."""
        if self.approve != "code" or ev.candidate.get("kind") != "code":
            return False
        self.held[ev.index] = Held(ev, member, proposal)
        log.warning("iteration %d (agent-written code) waits for approval: python -m enpire.ctl approve %s %d",
                    ev.index, self.session_id, ev.index)
        self.publish(self._status)
        return True

    def _decide(self, iteration: Any, approve: bool, why: str) -> Command | str:
        """The command for held `iteration`, or why there is none."""
        try:
            held = self.held.pop(int(iteration))
        except (KeyError, TypeError, ValueError):
            return f"iteration {iteration!r} is not waiting for approval (waiting: {sorted(self.held) or 'none'})"
        if approve:
            log.info("iteration %d approved by the operator", held.ev.index)
            return Command("queue", held.ev, held.member)
        return Command("reject", held.ev, held.member, held.proposal, why)

    # ---- the loop's hook ---------------------------------------------------------------------
    def step(self, now: float, status: LoopStatus) -> list[Command]:
        """The commands that arrived (and those the estop flag or an ending session call for), oldest first."""
        self._status = status
        if now >= self._next_state:  # ctl status and tests read how many trials are in flight
            self._next_state = now + STATE_EVERY_S
            self.publish(status)
        out: list[Command] = []
        if status.stopped_by in (None, "operator_stop") and self.channel.estop_set():  # before its command arrives
            log.warning("estop flag set: no trial starts from now on, the session ends")
            out.append(Command("estop"))
        for cmd in self.channel.poll(now):
            self.commands += 1
            verb = cmd["verb"]
            log.warning("operator command: %s %s", verb, {k: v for k, v in cmd.items() if k != "verb"})
            if verb in ("pause", "resume", "stop"):
                out.append(Command(verb))
            elif verb == "estop":
                if not self.channel.estop_set():  # a command without the flag: set it, so every station stops
                    with open(self.channel.flag_path, "r+b") as fh:
                        fh.write(b"\x01")
                out.append(Command("estop"))
            elif verb == "reset-done":
                try:
                    out.append(Command("reset_done", station=int(cmd["station"]), reason=str(cmd.get("by") or "?")))
                except (KeyError, TypeError, ValueError):
                    self.publish(status, f"reset-done: station {cmd.get('station')!r} is not a station number")
            elif verb in ("approve", "reject"):
                decided = self._decide(cmd.get("iteration"), verb == "approve",
                                       str(cmd.get("reason") or "rejected by the operator"))
                if isinstance(decided, str):
                    self.publish(status, decided)
                else:
                    out.append(decided)
        ending = status.stopped_by is not None or any(c.verb in ("stop", "estop") for c in out)
        if ending and self.held:
            for index in list(self.held):
                out.append(self._decide(index, False, "not approved before the session ended"))  # type: ignore[arg-type]
        return out

    def publish(self, status: LoopStatus | None, problem: str | None = None) -> None:
        state = "paused" if status is not None and status.paused else "running"
        if status is not None and status.stopped_by is not None:
            state = "stopping"
        extra: dict[str, Any] = {"waiting_approval": sorted(self.held)}
        if status is not None:
            extra.update(in_flight=status.in_flight, trials=status.trials, iterations=status.iterations,
                         needs_reset={str(k): v for k, v in status.needs_reset.items()})
        if problem:
            extra["last_error"] = problem
            log.warning("operator command refused: %s", problem)
        self.channel.publish(state, **extra)

    def close(self, stopped_by: str | None) -> None:
        self.channel.close(stopped_by or "unknown")


def open_control(spec: ExperimentSpec, channel: ControlChannel | None, tracker: Any) -> SessionControl | None:
    """The session's operator control on `channel`, or None when it cannot be had (the session runs uncontrolled)."""
    if channel is None:
        return None
    try:
        return SessionControl(spec, channel, tracker)
    except Exception:
        log.exception("operator control unavailable for this session")
        return None
