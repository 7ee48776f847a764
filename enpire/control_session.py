"""What a running session does with operator commands (enpire.ctl): pause, resume, stop, estop, approvals.

Kept out of loop.py so the loop only calls `step` once a pass and asks `hold` before queueing a candidate.
Decisions (docs/reliability.md): `stop` lets trials in flight finish, then the session ends with
`stopped_by: operator_stop` and exit 0; `estop` has already stopped every robot through the shared flag,
the trials in flight come back `estopped`, and the session ends with `stopped_by: estop` and exit 0 (a person
restarts it with `python -m enpire resume=SESSION_ID` once the cell is safe). Candidates held for approval
when a session ends are recorded as `rejected` ("not approved before the session ended").
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from enpire.control import STARTING, ControlChannel

if TYPE_CHECKING:
    from enpire.agent.team import Member
    from enpire.agent.tree import Evaluation
    from enpire.loop import Session

log = logging.getLogger(__name__)

class TrackingFailed(RuntimeError):
    """The MLflow writer cannot go on (not a transient fault); the session ends with exit 1."""


STATE_EVERY_S = 0.5
DEFAULTS = {"approve": "none", "control_root": "outputs/control", "poll_s": 0.1}


@dataclass
class Held:
    ev: Evaluation
    member: Member
    proposal: dict[str, Any]


def supervision(s: Session) -> dict[str, Any]:
    return {**DEFAULTS, **dict(s.spec.resolved.get("supervision") or {})}


def open_channel(s: Session) -> ControlChannel | None:
    """The control directory, made before the stations start (they map its estop flag) and before the MLflow
    run exists: keyed by the resumed session's id, else by a provisional id that `adopt` links later."""
    sup = supervision(s)
    key = s.spec.resume or f"{STARTING}/{os.getpid()}-{time.time_ns()}"
    try:
        return ControlChannel(sup["control_root"], key, float(sup["poll_s"]))
    except Exception:
        log.exception("operator control unavailable for this session")
        return None


class SessionControl:
    def __init__(self, session: Session, channel: ControlChannel) -> None:
        sup = supervision(session)
        self.approve = str(sup["approve"])
        tracker = session.tracker
        assert tracker is not None, "the control channel is keyed by the session's MLflow run id"
        self.channel = channel
        channel.adopt(tracker.run_id)
        self.session_id = tracker.run_id
        tracker.client.set_tag(tracker.run_id, "enpire.control_dir", str(channel.dir))
        self.session = session
        self.held: dict[int, Held] = {}
        self.commands = 0
        self._next_state = 0.0
        log.info("operator control: python -m enpire.ctl pause|resume|stop|estop %s (dir %s)",
                 tracker.run_id, channel.dir)

    # ---- approvals ---------------------------------------------------------------------------
    def hold(self, ev: Evaluation, member: Member, proposal: dict[str, Any]) -> bool:
        """True when `ev` waits for a person (supervision.approve=code and agent-written code)."""
        if self.approve != "code" or ev.candidate.get("kind") != "code":
            return False
        self.held[ev.index] = Held(ev, member, proposal)
        member.outstanding += 1  # keeps the session alive while it waits
        log.warning("iteration %d (agent-written code) waits for approval: python -m enpire.ctl approve %s %d",
                    ev.index, self.session_id, ev.index)
        self._publish(self.session)
        return True

    def _decide(self, s: Session, iteration: Any, approve: bool, why: str) -> str | None:
        try:
            held = self.held.pop(int(iteration))
        except (KeyError, TypeError, ValueError):
            return f"iteration {iteration!r} is not waiting for approval (waiting: {sorted(self.held) or 'none'})"
        held.member.outstanding -= 1
        if approve:
            log.info("iteration %d approved by the operator", held.ev.index)
            s.scheduler.add(held.ev)
            held.member.outstanding += 1
            journal = getattr(s, "journal", None)  # crash safety (enpire.track.journal): as any queued proposal
            if journal is not None:
                journal.proposal(held.ev)
        else:
            summary = s.tree.reject(held.ev.index, held.member.name, held.member.agent.branch, held.proposal,
                                    why, held.ev.tokens)
            s._closed(summary, [], held.member)
        return None

    # ---- the loop's hook ---------------------------------------------------------------------
    def step(self, s: Session, now: float) -> None:
        """Apply the commands that arrived; also stop the session on a fatal tracking error."""
        fatal = getattr(s.tracker, "fatal", None)
        if fatal:  # e.g. the output disk is full: nothing more can be recorded, so nothing more may run
            raise TrackingFailed(fatal)
        if now >= self._next_state:  # ctl status and tests read how many trials are in flight
            self._next_state = now + STATE_EVERY_S
            self._publish(s)
        if s.stopped_by in (None, "operator_stop") and self.channel.estop_set():  # before its command arrives
            log.warning("estop flag set: no trial starts from now on, the session ends")
            self._estop(s)
        for cmd in self.channel.poll(now):
            self.commands += 1
            verb, problem = cmd["verb"], None
            log.warning("operator command: %s %s", verb, {k: v for k, v in cmd.items() if k != "verb"})
            if verb == "pause":
                s.paused = True
            elif verb == "resume":
                s.paused = False
            elif verb == "stop":
                s.paused = False
                s.stopped_by = s.stopped_by or "operator_stop"
            elif verb == "estop":
                if not self.channel.estop_set():  # a command without the flag: set it, so every station stops
                    with open(self.channel.flag_path, "r+b") as fh:
                        fh.write(b"\x01")
                self._estop(s)
            elif verb in ("approve", "reject"):
                problem = self._decide(s, cmd.get("iteration"), verb == "approve",
                                       str(cmd.get("reason") or "rejected by the operator"))
            self._publish(s, problem)
        if s.stopped_by is not None and self.held:
            for index in list(self.held):
                self._decide(s, index, False, "not approved before the session ended")

    @staticmethod
    def _estop(s: Session) -> None:
        """End the session as `estop` (a stop for another reason already under way, e.g. done, keeps its name)."""
        s.paused = False
        if s.stopped_by in (None, "operator_stop"):
            s.stopped_by = "estop"

    def _publish(self, s: Session | None, problem: str | None = None) -> None:
        state = "paused" if s is not None and s.paused else "running"
        if s is not None and s.stopped_by is not None:
            state = "stopping"
        extra: dict[str, Any] = {"waiting_approval": sorted(self.held)}
        if s is not None:
            extra.update(in_flight=s.scheduler.in_flight(), trials=int(s.ledger.used["trials"]),
                         iterations=len(s.tree.iterations))
        if problem:
            extra["last_error"] = problem
            log.warning("operator command refused: %s", problem)
        self.channel.publish(state, **extra)

    def close(self, s: Session) -> None:
        fatal = getattr(s.tracker, "fatal", None)
        if fatal and not (s.stopped_by or "").startswith("error"):  # the session ended before the loop saw it
            s.stopped_by = f"error: {fatal} (after stopped_by {s.stopped_by})"
        self.channel.close(s.stopped_by or "unknown")


def open_control(s: Session, channel: ControlChannel | None) -> SessionControl | None:
    """The session's operator control on `channel`, or None when it cannot be had (the session runs uncontrolled)."""
    if channel is None:
        return None
    try:
        return SessionControl(s, channel)
    except Exception:
        log.exception("operator control unavailable for this session")
        return None
