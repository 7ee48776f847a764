"""The runner: spec in, session out. reset -> execute -> verify -> refine until /done or budget.

One pass of the loop: re-check the frozen fingerprints, take in finished agent calls
(proposal -> validated iteration, or a `rejected` one the agent is told about), start agent
calls while the trial queue runs low, dispatch queued trials to idle stations, collect
finished trials, close iterations whose trials are all back (keep/discard by the idea tree's
fixed rule), and stop on /done, a spent budget, a dead fleet or failing agents. The fleet,
agents, ledger and tracker are separate objects; this module only wires them and owns the
loop's own state: it hands proposals, trials, closed iterations and the end to its observers
(enpire.track.observers: the journal, MLflow), applies the state a resume hands it
(enpire.track.resume.Restored) and the operator's commands (enpire.ops.commands.Command).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from enpire.agent.api import Agent, AgentReply
from enpire.agent.calls import AgentCalls, Pipeline, strict_lag
from enpire.agent.evidence import evidence_store
from enpire.agent.idle_fill import IdleFill
from enpire.agent.intake import normalise, rejection
from enpire.agent.order import CallOrder
from enpire.agent.proposal import proposal_schema
from enpire.agent.team import Member, Team
from enpire.agent.tree import IdeaTree
from enpire.fleet.budget import BudgetLedger
from enpire.fleet.executor import STATION_FACTORY
from enpire.fleet.executors import make_executor
from enpire.fleet.human_reset import write_interventions
from enpire.fleet.scheduler import Scheduler
from enpire.fleet.screen import Screen, Verdict
from enpire.fleet.trainer_slot import TrainerSlot, iteration_run_opener
from enpire.judge.integrity import check_integrity
from enpire.ops.commands import Command, LoopStatus, SessionControl, open_channel, open_control
from enpire.ops.progress import Progress, Snapshot, window_progress
from enpire.policy.sandbox_paths import RUN_DIR_ENV
from enpire.records import Evaluation, IterationSummary
from enpire.spec.errors import EXIT_INTEGRITY, IntegrityError
from enpire.spec.model import ExperimentSpec
from enpire.track.confidence import BestTracker, Confirmed, best_metrics
from enpire.track.finish import session_end
from enpire.track.observers import IterationClosed, SessionObserver, Tracking, TrackingFailed
from enpire.track.resume import begin_tracking

if TYPE_CHECKING:
    from enpire.ops.control import ControlChannel
    from enpire.track.deferred import DeferredTracking
    from enpire.track.resume import Restored

log = logging.getLogger(__name__)

INTEGRITY_EVERY_S = 1.0


@dataclass(frozen=True)
class SessionContext:
    """Where and how a session was launched (from Hydra)."""

    run_dir: str  # Hydra's run directory for this job (outputs/runs/... or outputs/multirun/.../N_...)
    sweep_id: str | None = None  # the multirun's sweep directory; every job of a sweep shares it
    job_num: int | None = None
    argv: tuple[str, ...] = ()


def build_agents(spec: ExperimentSpec) -> list[Agent]:
    from enpire.agent.registry import make_agent

    team = spec.team or (spec.agent,) * spec.agents  # team=[claude,search]: each member its own config
    return [make_agent(spec, index=i, seed=spec.seed, agent=team[i]) for i in range(len(team))]


class Session(AgentCalls):
    """State of one running session; `run` drives it to the end and returns the exit code. Agent calls
    (when, of whom, for how many proposals) are enpire.agent.calls'."""

    def __init__(self, spec: ExperimentSpec, context: SessionContext, agents: list[Agent] | None,
                 station_factory: str, on_iteration: Callable[[IterationSummary], None] | None,
                 live: bool | None) -> None:
        self.spec, self.context, self.on_iteration = spec, context, on_iteration
        self.t0 = time.monotonic()
        self.launched_ms = int(time.time() * 1000)  # the session run's start, even when it opens after trials ran
        self.ledger = BudgetLedger(spec.budget, trial_reserve_s=spec.done.time_limit_s * spec.done.attempts)
        self.tree = IdeaTree(spec)
        self.best_tracker = BestTracker()  # the confirmed best, ranked incrementally (enpire.track.confidence)
        self.team = Team.of(agents if agents is not None else build_agents(spec))
        self.schema = proposal_schema(spec.policy)
        self.executor = make_executor(spec, station_factory)
        self.scheduler = Scheduler(spec, self.executor, self.ledger, Path(context.run_dir) / "trials")
        self.trainer = TrainerSlot(spec, self.ledger, Path(context.run_dir) / "trainer")  # bc: trained first
        self.screen = Screen(spec, station_factory, Path(context.run_dir))  # dry check and digital twin first
        self.progress = Progress(f"enpire {spec.task.name} fleet={spec.fleet}", live)
        self.next_index = 0
        sizes = tuple(max(1, int(getattr(m.agent, "batch", 1))) for m in self.team.members)  # strict call layout
        self.order = CallOrder(spec.determinism, lag=strict_lag(spec.fleet, sizes), sizes=sizes)
        self.pipeline = Pipeline()  # the fleet's trial rate: how far ahead agents are asked
        self.idle_fill = IdleFill(spec)  # idle_stations=confirm: stations confirm the leader while agents think
        # records and replays of recent trials, for agents that look at them (enpire.agent.evidence)
        self.evidence = evidence_store(spec, [m.agent for m in self.team.members], Path(context.run_dir) / "evidence",
                                      lag=self.order.lag)
        self.stopped_by: str | None = None
        self.breach: IntegrityError | None = None
        self.done_at: dict[str, float] | None = None
        self.loop_t0 = self.loop_t1 = 0.0
        self.last_line = ""
        self.crashes = 0
        self.executing_s = 0.0  # wall seconds stations spent executing trials, by their own clocks
        self.tracking: Tracking | DeferredTracking | None = None  # journal + MLflow writer (enpire.track.deferred)
        self.observers: list[SessionObserver] = []  # told of every proposal, trial, iteration and the end
        self.control: SessionControl | None = None  # operator control (enpire.ops), opened once the run id is known
        self.channel: ControlChannel | None = None  # its channel, until the control opens on it
        self.paused = False

    @property
    def session_id(self) -> str:
        """The MLflow run id of the session run ('' before it exists)."""
        tracker = self.tracking.tracker if self.tracking is not None else None
        return tracker.run_id if tracker is not None else ""

    # ---- agents ------------------------------------------------------------------------------
    def _valid_parents(self, horizon: int | None = None) -> dict[int, dict]:
        return {it.index: it.candidate for it in self.tree.iterations
                if it.decision not in ("rejected", "cancelled") and (horizon is None or it.index < horizon)}

    def _take_replies(self, now: float) -> None:
        finished = self.team.finished(now)
        if self.order.strict:
            for member, reply in finished:
                self.order.arrived(member.call_index, member, reply, member.call_started)  # type: ignore[arg-type]
            taken = self.order.in_order()
        else:
            taken = [(None, member, reply, member.call_started) for member, reply in finished]
        for index, member, reply, called_at in taken:
            if self.stopped_by is None:
                self._take_reply(member, reply, index, called_at)
            else:  # discarded at the stop: its iterations are not charged, its tokens are
                self.ledger.release("iterations", self.order.slot(index)[1] if index is not None else member.call_slots)
                self.ledger.charge("tokens", reply.tokens)
                member.tokens += reply.tokens

    def _take_reply(self, member: Member, reply: AgentReply, index: int | None = None,
                    called_at: float | None = None) -> None:
        """A call's reply: up to its slots of proposals, iterations `index`, `index + 1`, ... (strict) or the next
        free indices (fast); the first carries the call's tokens and transcript."""
        slots = self.order.slot(index)[1] if index is not None else member.call_slots
        self.ledger.release("iterations", slots)
        if reply.tokens:
            self.ledger.charge("tokens", reply.tokens)
            member.tokens += reply.tokens
        if reply.proposal is None:
            member.failures += 1
            config = getattr(member.agent, "config", None)  # a mixed team: each member's own limit
            config = config if hasattr(config, "get") else self.spec.agent
            limit = int(config.get("max_consecutive_failures", 3))
            log.warning("agent %s produced no proposal (%s); %d of %d failures in a row", member.name,
                        reply.error, member.failures, limit)
            if member.failures >= limit:
                self.stopped_by = f"error: agent {member.name} failed {member.failures} calls in a row ({reply.error})"
            return
        member.failures = 0
        check_integrity(self.spec)  # before every iteration
        first = self.next_index if index is None else index
        proposals = reply.proposals
        if len(proposals) > slots:
            log.warning("agent %s sent %d proposals for %d slots; the rest are ignored", member.name,
                        len(proposals), slots)
        for k in range(slots):
            if k < len(proposals) and (k == 0 or self.ledger.blocking_iteration() is None):
                self._accept(member, proposals[k], first + k, reply.tokens if k == 0 else 0,
                             reply.transcript if k == 0 else [], called_at)
            elif index is not None:  # strict: a slot the reply (or a spent cap) left unused
                self.order.skip(first + k)

    def _accept(self, member: Member, proposal: dict, index: int, tokens: int, transcript: list,
                called_at: float | None) -> None:
        """One proposal of a reply: rejected (the agent is told why), cancelled (no trial left) or queued."""
        self.next_index = max(self.next_index, index + 1)
        self.ledger.charge("iterations", 1)
        parents = self._valid_parents(self.order.horizon(index) if self.order.strict else None)
        why = rejection(proposal, self.schema, parents)
        if why is not None:
            summary = self.tree.reject(index, member.name, member.agent.branch, proposal, why, tokens)
            self._closed(summary, [], member, transcript, called_at)
            return
        candidate, key = normalise(proposal, self.spec, parents)
        wanted = int(proposal.get("trials") or self.spec.agent.trials_per_candidate)
        trials = min(wanted, self.ledger.trials_left(self.scheduler.undispatched()))  # never more than the cap allows
        ev = Evaluation(
            index=index, agent=member.name, branch=member.agent.branch, parent=proposal.get("parent"),
            hypothesis=proposal["hypothesis"], candidate=candidate, key=key, trials_wanted=trials,
            borrowed_from=proposal.get("borrowed_from"), tokens=tokens, transcript=transcript)
        if trials == 0:  # the trials cap leaves nothing for it: cancelled, not an iteration of the budget
            ev.trials_wanted = wanted
            self._cancel(ev, member)
            return
        if self.control is not None and self.control.hold(ev, member, proposal):
            member.outstanding += 1  # supervision.approve=code: waits for `enpire.ctl approve`, the session with it
            return
        self._queue(ev, member)

    def _queue(self, ev: Evaluation, member: Member) -> None:
        """Queue for the fleet, or first for the screen (a dry check, the digital twin: enpire.fleet.screen); either
        way the observers learn of it now (a killed session resumes a held iteration from its journal)."""
        for obs in self.observers:
            obs.on_proposal(ev)
        member.outstanding += 1
        self.scheduler.add(ev)  # held ones too (not ready): counted as queued work, closed in index order
        if self.screen.wants(ev):
            ev.screening = True
            self.screen.hold(ev, member)

    def _screened(self, verdict: Verdict) -> None:
        """The screen's verdict on a held iteration: its trials may go to the fleet, or it closes rejected (with the
        twin's figures and failed trials, no trial of its own) when its turn to close comes, like any iteration."""
        ev = verdict.ev
        ev.screening, ev.twin = False, verdict.twin  # twin None: only a dry check
        if not verdict.passed:
            ev.twin_records = list(verdict.records)
            ev.closed_as, ev.trials_wanted = ("rejected", verdict.reason), ev.dispatched

    def _closed(self, summary: IterationSummary, records: list, member: Member | None,
                transcript: list | tuple = (), started: float | None = None) -> None:
        self.order.close(summary, member.name if member is not None else None)
        if self.evidence is not None:  # before the writer may delete the replays it does not show
            self.evidence.keep(summary, list(records))
        if self.observers:
            event = IterationClosed(
                summary, list(records), summary.index in self.tree.raised_best,
                done=bool(summary.candidate_id) and summary.candidate_id == self.tree.done_key,  # the /done candidate
                transcript=list(transcript) or None, started=started, ended=time.monotonic(),
                metrics={**self.ledger.totals(), **best_metrics(self.tree.pools, self._best())},
                step=len(self.tree.iterations))
            for obs in self.observers:
                obs.on_iteration(event)
        self.last_line = (f"it {summary.index} {summary.agent} {summary.decision} "
                          f"{summary.success_rate:.2f} ({summary.trials} trials)")
        log.info("iteration %d (%s): %s, success %.2f over %d trials; %s", summary.index, summary.agent,
                 summary.decision, summary.success_rate, summary.trials, summary.reason)
        if member is not None and not self.order.strict:  # strict: observed at the next call's horizon
            member.agent.observe(summary)
        if self.on_iteration is not None:
            self.on_iteration(summary)

    def _cancel(self, ev: Evaluation, member: Member | None) -> None:
        """Close an iteration the stop (or a spent cap) left unrun: recorded as cancelled, its iteration refunded."""
        self.ledger.refund("iterations", 1)
        self._closed(self.tree.finish(ev, cancelled=True), ev.records, member, ev.transcript, ev.started or None)

    def _pool(self, ev: Evaluation) -> None:
        """strict: pool an iteration's trials at its close, in trial order; /done is judged here."""
        for record in sorted(ev.records[ev.pooled:], key=lambda r: r.trial_id):
            if self.tree.add_record(ev.key, record) and self.done_at is None:
                self._reached_done(ev)
        ev.pooled = len(ev.records)

    def _reached_done(self, ev: Evaluation | None = None) -> None:
        """/done was met. fast: what the ledger had spent by then; strict (`ev`: the iteration that met it, all
        before it closed): what the iterations up to it spent, the same in every run of the seed (trials of later
        iterations that happened to run meanwhile are in the totals, not in the figures to /done)."""
        used = self.ledger.totals()
        robot, tokens = used["robot_seconds"], used["tokens"]
        if ev is not None:
            counted = [it for it in self.tree.iterations if it.decision != "cancelled"]
            robot = sum(it.robot_seconds for it in counted) + sum(r.robot_seconds for r in ev.records)
            tokens = float(sum(it.tokens for it in counted) + ev.tokens)
        self.done_at = {"time_to_done_s": time.monotonic() - self.t0, "robot_s_to_done": robot,
                        "tokens_to_done": tokens}
        self.stopped_by = "done"

    def _close_evaluations(self, final: bool) -> None:
        strict = self.order.strict
        for ev in sorted(self.scheduler.queue, key=lambda e: e.index) if strict else list(self.scheduler.queue):
            if strict and not final and (ev.index != self.order.closed_below or self.tree.done_key is not None):
                break  # strict: iterations close in index order; after /done only the final pass closes
            if not self.scheduler.complete(ev, final):
                if strict:
                    break
                continue
            self.scheduler.remove(ev)
            member = next((m for m in self.team.members if m.name == ev.agent), self.idle_fill.member)
            member.outstanding -= 1
            unrun = final and ev.closed_as is None and ev.dispatched < ev.trials_wanted
            if unrun or (strict and self.tree.done_key is not None):  # strict: nothing after /done is judged
                self._cancel(ev, member)
                continue
            if strict:
                self._pool(ev)
            self._closed(self.tree.finish(ev), sorted(ev.records, key=lambda r: r.trial_id), member, ev.transcript,
                         ev.started)

    # ---- the loop ----------------------------------------------------------------------------
    def _should_stop(self) -> str | None:
        if self.tree.done_key is not None:
            return "done"
        if len(self.executor.faulty()) >= self.spec.fleet:
            return "fleet: every station is faulty"
        if self.screen.busy() and self.ledger.blocking_trial() == "wall_clock_s":
            return "wall_clock_s"  # what the screen still holds is cancelled: nothing may start past the cap
        if self.scheduler.in_flight() or self.team.in_flight() or self.trainer.busy() or self.screen.busy():
            return None
        if self.scheduler.undispatched():
            return self.scheduler.blocked_by
        if any(m.outstanding for m in self.team.members):
            return None
        return self.ledger.blocking_iteration() or self.ledger.blocking_proposal(0)  # no call could ever start

    def _best(self) -> Confirmed | None:
        """The confirmed best candidate now (incremental: only the pools that grew are ranked again)."""
        return self.best_tracker.update(self.tree.pools, self.tree.judge.take_grown())

    def _snapshot(self) -> Snapshot:
        running = {ev.index for ev in self.scheduler.running.values()}
        faulty = self.executor.faulty()
        idle = set(self.executor.idle())
        person = self.executor.needs_person()
        stations = ["faulty" if i in faulty else "needs_reset" if i in person else "idle" if i in idle else "busy"
                    for i in range(self.spec.fleet)]
        agents = [f"{m.name}: {'thinking' if m.call else 'waiting'}, {m.outstanding} evaluating"
                  for m in self.team.members]
        used, limits = self.ledger.snapshot()
        best = self._best()
        confirming = window_progress(self.tree.pools, self.scheduler.queue, self.spec.done.window,
                                     self.spec.done.min_success_rate)
        return Snapshot(time.monotonic() - self.t0, stations, len(self.tree.iterations),
                        int(self.ledger.used["trials"]), best.rate if best else 0.0, used, limits, agents,
                        self.last_line + (f" | running iterations {sorted(running)}" if running else ""),
                        best=best, confirming=confirming,
                        session_id=self.control.session_id if self.control is not None else "")

    def _loop(self) -> None:
        next_check = 0.0
        while True:
            now = time.monotonic()
            if now >= next_check:
                check_integrity(self.spec)
                next_check = now + INTEGRITY_EVERY_S
            self._operator(now)  # operator commands: pause/resume/stop/estop/approve
            self._take_replies(now)
            for verdict in self.screen.pump():
                self._screened(verdict)
            if self.stopped_by is None and not self.paused:
                self._start_calls()
                self.trainer.pump(self.scheduler.queue,
                                  iteration_run_opener(self.tracking.trainer_target() if self.tracking else None))
                self.scheduler.dispatch()
                if self.idle_fill.enabled and self.idle_fill.tick(self):
                    self.scheduler.dispatch()
                self.stopped_by = self._should_stop()
            if self.stopped_by is not None and not self.scheduler.in_flight() and not self.team.in_flight():
                break
            timeout = 0.02 if self.team.in_flight() or self.screen.busy() else 0.25
            for ev, record in self.scheduler.collect(timeout):
                self.crashes += record.outcome == "crash"
                self.executing_s += record.wall_s  # the station's own clock: reset, rollout, verification
                self.pipeline.note_trial(time.monotonic())
                for obs in self.observers:
                    obs.on_trial(ev, record)
                self.trainer.note(ev, record)
                if not self.order.strict:  # fast: pooled as they arrive; strict: at the iteration's close
                    ev.pooled += 1
                    if self.tree.add_record(ev.key, record) and self.done_at is None:
                        self._reached_done()
            self._close_evaluations(final=False)
            if self.progress.due():
                self.progress.update(self._snapshot())
        self.trainer.wait()  # a training job is never cut short: it is charged, its iteration closes untried
        self.loop_t1 = time.monotonic()
        self.screen.release()  # still screened at the stop: the final pass cancels them (they never ran)
        self._close_evaluations(final=True)
        members = {m.name: m for m in self.team.members}
        for name, summaries in self.order.leftovers().items():  # strict: the results its last calls did not see
            for summary in summaries:
                members[name].agent.observe(summary)

    # ---- what others hand the loop -------------------------------------------------------------
    def _restore(self, r: Restored) -> None:
        """Apply a resumed session's state (enpire.track.resume) before the loop starts: nothing is refunded."""
        ledger, tree = self.ledger, self.tree
        ledger.clock = time.monotonic() - r.wall_s  # wall clock already spent stays spent
        for record, key in r.trials:
            ledger.charge("trials", 1)
            ledger.charge("robot_seconds", record.robot_seconds)
            self.crashes += record.outcome == "crash"
            if key and tree.add_record(key, record) and self.done_at is None:
                self.done_at = {"time_to_done_s": r.wall_s, "robot_s_to_done": ledger.used["robot_seconds"],
                                "tokens_to_done": r.tokens}
        ledger.charge("iterations", r.iterations)
        ledger.charge("tokens", r.tokens)
        ledger.charge("trainer_seconds", r.trainer_seconds)
        members = {m.name: m for m in self.team.members}
        for summary, raised_best in r.closed:
            tree.add(summary, summary.candidate_id, raised_best)
            if summary.candidate_id:
                self.scheduler.note_evaluated(summary.candidate_id)
            member = members.get(summary.agent)
            if member is not None:
                member.agent.observe(summary)  # agents rebuild their memory the way they built it the first time
        for ev in r.open:
            member = members.get(ev.agent) or self.team.members[0]
            ev.agent = member.name
            ev.pooled = len(ev.records)  # its restored trials are in the pools already
            self.scheduler.add(ev)
            member.outstanding += 1
            if not ev.records and ev.key not in tree.pools and self.screen.wants(ev):  # held when the session stopped
                ev.screening = True
                self.screen.hold(ev, member)
        self.next_index = r.next_index
        self.order.restart_at(self.next_index, {it.index for it in tree.iterations})

    def _operator(self, now: float) -> None:
        """Stop on a fatal tracking error; apply the operator's commands (enpire.ops.commands)."""
        fatal = self.tracking.fatal if self.tracking is not None else None
        if fatal:  # e.g. the output disk is full: nothing more can be recorded, so nothing more may run
            raise TrackingFailed(fatal)
        if self.control is None:
            tracker = self.tracking.tracker if self.tracking is not None else None
            if self.channel is not None and tracker is not None:  # the run exists: control answers to its id
                self.channel, self.control = None, open_control(self.spec, self.channel, tracker)
            elif self.channel is not None and self.channel.estop_set() and self.stopped_by in (None, "operator_stop"):
                self._apply(Command("estop"))  # before the run exists the flag still stops the session
            if self.control is None:
                return
        commands = self.control.step(now, self._status())
        for cmd in commands:
            self._apply(cmd)
        if commands:
            self.control.publish(self._status())

    def _status(self) -> LoopStatus:
        return LoopStatus(self.paused, self.stopped_by, self.scheduler.in_flight(), int(self.ledger.used["trials"]),
                          len(self.tree.iterations), self.executor.needs_person())

    def _apply(self, cmd: Command) -> None:
        if cmd.verb in ("pause", "resume"):
            self.paused = cmd.verb == "pause"
        elif cmd.verb == "stop":
            self.paused = False
            self.stopped_by = self.stopped_by or "operator_stop"
        elif cmd.verb == "estop":  # a stop for another reason already under way (e.g. done) keeps its name
            self.paused = False
            if self.stopped_by in (None, "operator_stop"):
                self.stopped_by = "estop"
        elif cmd.verb == "reset_done" and cmd.station is not None:  # a person fixed a station's scene
            refused = self.executor.reset_done(cmd.station, cmd.reason)
            if refused and self.control is not None:
                self.control.publish(self._status(), refused)
        elif cmd.ev is not None and cmd.member is not None:  # a held iteration, approved (queue) or rejected
            ev, member = cmd.ev, cmd.member
            member.outstanding -= 1
            if cmd.verb == "queue":
                self._queue(ev, member)
            else:
                self._closed(self.tree.reject(ev.index, member.name, member.agent.branch, cmd.proposal, cmd.reason,
                                              ev.tokens), [], member)

    def _first_station(self, wait_s: float = 10.0) -> None:
        """Staged start: the first station boots alone (beside MLflow's open), the rest once it is up; a first
        station that is not up within `wait_s` leaves it to `await_ready` (which starts the rest anyway)."""
        deadline = time.monotonic() + wait_s
        while not self.executor.idle() and not self.executor.faulty() and time.monotonic() < deadline:
            self.executor.wait(0.02)  # no trial is out yet: nothing but "ready" can arrive

    def _finish(self, code: int) -> int:
        """The summary, printed; the observers record the end (one that cannot makes the exit code 1)."""
        end = session_end(self, code)
        for obs in self.observers:
            if not obs.on_finish(end):
                code = code or 1
        print(end.text, end="", flush=True)
        return code

    def run(self) -> int:
        code = 0
        with self.progress:
            try:
                check_integrity(self.spec)
                self.channel = open_channel(self.spec)  # before the stations start: they map its estop flag
                os.environ[RUN_DIR_ENV] = str(Path(self.context.run_dir).resolve())  # sandboxes hide it
                # staged start: the first station boots while MLflow opens (one core each on a small machine),
                # the others right after, while the first trials run
                self.executor.launch(count=max(1, (os.cpu_count() or 2) - 1))
                # a new session: its journal now, its MLflow run on a thread while trials run (enpire.track.deferred);
                # a resumed one (resume=SESSION_ID): the reopened run and the state it hands the loop, first
                self.tracking = begin_tracking(self.spec, self.context, self.ledger.elapsed, self.launched_ms)
                self.observers = self.tracking.observers()
                if self.tracking.restored is not None:
                    self._restore(self.tracking.restored)
                self.tracking.started(self.ledger)
                self._operator(time.monotonic())  # operator control, at once when the run already exists
                self._start_calls()  # agents think while the stations boot
                self._first_station()
                self.executor.await_ready(first_only=True)  # the rest boot while the first trials run
                self.loop_t0 = time.monotonic()
                self._loop()
            except IntegrityError as error:
                log.error("%s", error)
                self.breach, self.stopped_by, code = error, f"integrity_breach: {error.what}", EXIT_INTEGRITY
            except TrackingFailed as error:  # the writer said why (disk full): one line, no traceback
                log.error("session ended: %s", error)
                self.stopped_by, code = f"error: {error!r}"[:300], 1
            except Exception as error:  # anything else: recorded, summarised, exit 1
                log.exception("session failed")
                self.stopped_by, code = f"error: {error!r}"[:300], 1
            finally:
                self.loop_t1 = self.loop_t1 or time.monotonic()
                self.executor.close()
                try:
                    self.screen.close()
                except Exception:  # noqa: BLE001 - the twin's stations must not cost the session's record
                    log.warning("closing the screen's twin stations failed", exc_info=True)
                write_interventions(self.context.run_dir, self.executor.interventions())
                self.team.close()
                if self.evidence is not None:
                    try:
                        self.evidence.close()
                    except Exception:  # noqa: BLE001 - lost stills must not cost the session's record
                        log.warning("closing the agents' evidence store failed", exc_info=True)
                os.environ.pop(RUN_DIR_ENV, None)
                if self.tracking is not None:
                    self.tracking.wait()  # a session shorter than MLflow's open: the run is needed from here on
                fatal = self.tracking.fatal if self.tracking is not None else None
                if fatal and not (self.stopped_by or "").startswith("error"):  # it ended before the loop saw it
                    self.stopped_by = f"error: {fatal} (after stopped_by {self.stopped_by})"
                if self.control is None and self.channel is not None:  # ended before its control opened
                    tracker = self.tracking.tracker if self.tracking is not None else None
                    if tracker is not None:  # named by the session's id like any other (ctl status finds it)
                        self.control = open_control(self.spec, self.channel, tracker)
                    if self.control is None:
                        self.channel.close(self.stopped_by or "unknown")  # restores ENPIRE_ESTOP_FLAG
                    self.channel = None
                if self.control is not None:
                    self.control.close(self.stopped_by)
            self.progress.update(self._snapshot(), force=True)
        return self._finish(code)


def run_session(spec: ExperimentSpec, context: SessionContext, *, agents: list[Agent] | None = None,
                station_factory: str = STATION_FACTORY,
                on_iteration: Callable[[IterationSummary], None] | None = None, live: bool | None = None) -> int:
    """Run one session; returns the exit code (0 finished, 3 integrity breach, 1 error).

    `agents` replaces the team built from spec.agent (tests script agents this way);
    `on_iteration` is called after every recorded iteration (tests use it as a hook).
    """
    return Session(spec, context, agents, station_factory, on_iteration, live).run()
