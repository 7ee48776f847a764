"""Before robot time (`screen:`, docs/twin.md): a dry check of agent-written code, then a digital twin.

The loop queues every accepted iteration for the fleet and hands the ones the screen `wants` to `Screen.hold`;
those stay in the queue, not ready (`Evaluation.screening`), until the screen decides:

1. **Dry check** (`screen.dry_check`, code candidates): the source starts in the sandbox and answers `reset()`
   and `screen.dry_steps` `act()` calls on a real observation of the task (enpire.policy.dry_check), on a
   thread of its own. A failure (an import error, a missing entry point, an action of the wrong size) rejects
   the iteration naming why: no trial, no robot time.
2. **Digital twin** (`screen.twin: sim`, params and code candidates): `screen.trials` trials on twin stations,
   the same task with its nominal dynamics (`dynamics:` applies to the fleet only: a sim-to-sim gap), seeds of
   their own, their time counted as twin sim-seconds (`twin_sim_seconds`), never robot time. A candidate whose
   twin success rate is below `screen.min_success` is rejected with the twin's figures and failed trials (the
   agents learn from them as from a failed screen); one that passes is queued for the fleet carrying them.

A verdict belongs to the candidate: a candidate proposed again reuses it (no new check), one proposed while it
is being checked waits for the same verdict. bc and rl candidates go straight to the fleet (their policies are
trained from the fleet's own data). A twin whose stations all failed lets candidates through, once logged.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from enpire.fleet.budget import BudgetLedger
from enpire.fleet.executors import make_executor
from enpire.fleet.scheduler import Scheduler
from enpire.judge.pools import NO_EVIDENCE
from enpire.records import Evaluation, TrialRecord
from enpire.spec.frozen import freeze, thaw
from enpire.spec.model import NOMINAL_DYNAMICS, BudgetSpec, ExperimentSpec, RecordSpec, StationSpec

log = logging.getLogger(__name__)

TWIN_STREAM = 0x7717  # the twin's seed stream: its trials never replay the fleet's episodes
UNLIMITED = BudgetSpec(iterations=2**62, trials=2**62, robot_seconds=float("inf"), wall_clock_s=float("inf"),
                       tokens=2**62, trainer_seconds=float("inf"))
TWIN_KINDS = ("params", "code")


def twin_seed(seed: int) -> int:
    return int(np.random.SeedSequence([int(seed), TWIN_STREAM]).generate_state(1)[0]) & 0x7FFFFFFF


def twin_spec(spec: ExperimentSpec) -> ExperimentSpec:
    """The twin's stations: the task with its nominal dynamics on the simulated robot (the MuJoCo adapter, whatever
    arm the fleet drives, and none of the station owner's motion gates or a person's resets: nothing real moves),
    `screen.stations` of them on this machine (in the session's process under executor=inline; a fork server where
    the fleet's executor names no start method), no videos, no recordings, seeds of their own."""
    kind = "inline" if spec.executor.kind == "inline" else "local"
    method = spec.executor.start_method if spec.executor.start_method != "none" else "forkserver"
    supervision = dict(spec.resolved.get("supervision") or {})
    supervision["human_reset"] = False
    return replace(spec, dynamics=NOMINAL_DYNAMICS, fleet=spec.screen.stations, seed=twin_seed(spec.seed),
                   video=replace(spec.video, enabled=False), record=RecordSpec(), station=StationSpec(),
                   robot=replace(spec.robot, adapter="mujoco"),
                   executor=replace(spec.executor, kind=kind, start_method=method),
                   resolved=freeze({**thaw(spec.resolved), "supervision": supervision}))


@dataclass
class Verdict:
    """What the screen decided about one held iteration."""

    ev: Evaluation
    member: Any  # the proposing team member (enpire.agent.team.Member)
    passed: bool
    reason: str = ""  # why it was screened out
    records: list[TrialRecord] = field(default_factory=list)  # the twin's trials of its candidate
    twin: dict[str, Any] | None = None  # the twin's figures (IterationSummary.twin)


@dataclass
class _Held:
    ev: Evaluation
    member: Any


@dataclass
class _Check:
    """One candidate being checked: the iterations waiting for its verdict, its dry check, its twin trials."""

    key: str
    waiting: list[_Held]
    dry: Future | None = None
    twin: Evaluation | None = None


class Screen:
    def __init__(self, spec: ExperimentSpec, station_factory: str, run_dir: Path) -> None:
        self.spec, self.config = spec, spec.screen
        self._factory, self._out = station_factory, Path(run_dir) / "twin"
        self._checks: dict[str, _Check] = {}  # candidate key -> its check under way
        self._verdicts: dict[str, Verdict] = {}  # candidate key -> its verdict, for candidates proposed again
        self._ready: list[Verdict] = []  # decided, not yet handed to the loop
        self._dry_pool: ThreadPoolExecutor | None = None
        self._observation: dict[str, np.ndarray] | None = None
        self._twin: Scheduler | None = None
        self._twin_broken = False
        self.totals = {"twin_trials": 0.0, "twin_sim_seconds": 0.0, "twin_candidates": 0.0, "twin_rejected": 0.0,
                       "dry_checks": 0.0, "dry_rejected": 0.0}

    # ---- what the loop asks ----------------------------------------------------------------------------------
    def wants(self, ev: Evaluation) -> bool:
        kind = ev.candidate.get("kind")
        return (self.config.enabled and kind in TWIN_KINDS and not self._twin_broken) or (
            self.config.dry_check and kind == "code")

    def hold(self, ev: Evaluation, member: Any) -> None:
        """Keep `ev` off the fleet until its candidate's verdict (known already: at the next pump)."""
        known = self._verdicts.get(ev.key)
        if known is not None:
            self._ready.append(replace(known, ev=ev, member=member))
            return
        check = self._checks.get(ev.key)
        if check is not None:
            check.waiting.append(_Held(ev, member))
            return
        check = self._checks[ev.key] = _Check(ev.key, [_Held(ev, member)])
        if self.config.dry_check and ev.candidate.get("kind") == "code":
            self.totals["dry_checks"] += 1
            check.dry = self._dry_checker().submit(self._dry_check, ev)
        else:
            self._start_twin(check, ev)

    def busy(self) -> bool:
        """Iterations held (the session may not end while they wait; the final pass cancels them)."""
        return bool(self._checks or self._ready)

    def pump(self) -> list[Verdict]:
        """Advance the checks without blocking: dry checks that finished, twin trials dispatched and collected;
        returns the verdicts reached (each held iteration once)."""
        for check in list(self._checks.values()):
            if check.dry is not None and check.dry.done():
                problem, check.dry = check.dry.result(), None
                if problem is not None:
                    self.totals["dry_rejected"] += 1
                    self._decide(check, False, f"dry check failed before any trial: {problem}")
                elif self.config.enabled and not self._twin_broken:
                    self._start_twin(check, check.waiting[0].ev)
                else:
                    self._decide(check, True)
        if self._twin is not None and not self._twin_broken:
            try:
                self._pump_twin()
            except Exception:  # noqa: BLE001 - a broken twin lets candidates through; it never ends the session
                log.exception("the digital twin failed: candidates reach the fleet unscreened from now on")
                self._broken()
        out, self._ready = self._ready, []
        return out

    def release(self) -> None:
        """The session stops: forget every iteration still held (the loop cancels them; twin trials still out are
        abandoned with the twin's stations)."""
        self._checks, self._ready = {}, []

    def close(self) -> None:
        if self._twin is not None:
            self._twin.executor.close()
        if self._dry_pool is not None:
            self._dry_pool.shutdown(wait=True, cancel_futures=True)

    # ---- the dry check ---------------------------------------------------------------------------------------
    def _dry_checker(self) -> ThreadPoolExecutor:
        if self._dry_pool is None:
            self._dry_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enpire-dry-check")
        return self._dry_pool

    def _dry_check(self, ev: Evaluation) -> str | None:
        from enpire.policy.contract import example_observation
        from enpire.policy.dry_check import dry_check

        try:
            if self._observation is None:  # the simulated robot's, nominal: never a real arm's
                self._observation = example_observation(twin_spec(self.spec))
            return dry_check(self.spec, ev, self._observation, self.config.dry_steps)
        except Exception as error:  # noqa: BLE001 - a broken check must not end the session: the fleet decides
            log.warning("the dry check of %s could not run (%r); the candidate goes on unchecked", ev.key, error)
            return None

    # ---- the twin --------------------------------------------------------------------------------------------
    def _start_twin(self, check: _Check, ev: Evaluation) -> None:
        if self._twin is None:
            spec = twin_spec(self.spec)
            try:
                executor = make_executor(spec, self._factory)
                executor.launch()
            except Exception:  # noqa: BLE001 - e.g. an inline station that cannot build: unscreened, logged
                log.exception("the digital twin's stations could not start: candidates reach the fleet unscreened")
                self._twin_broken = True
                self._decide(check, True, remember=False)
                return
            self._twin = Scheduler(spec, executor, BudgetLedger(UNLIMITED, trial_reserve_s=0.0), self._out)
        self.totals["twin_candidates"] += 1
        check.twin = Evaluation(index=ev.index, agent=ev.agent, branch=ev.branch, parent=None, hypothesis="",
                                candidate=ev.candidate, key=ev.key, trials_wanted=self.config.trials)
        self._twin.add(check.twin)

    def _pump_twin(self) -> None:
        twin = self._twin
        assert twin is not None
        twin.dispatch()
        for _, record in twin.collect(0.0):
            self.totals["twin_trials"] += 1
            self.totals["twin_sim_seconds"] += record.robot_seconds
        for ev in list(twin.queue):
            if twin.complete(ev):
                twin.remove(ev)
                check = self._checks.get(ev.key)
                if check is not None:
                    self._twin_verdict(check, ev.records)
        if len(twin.executor.faulty()) >= twin.spec.fleet:
            log.error("every twin station is faulty (%s): candidates reach the fleet unscreened from now on",
                      twin.executor.faulty())
            self._broken()

    def _broken(self) -> None:
        """The twin cannot screen any more: every candidate it holds goes on unscreened (no verdict remembered)."""
        self._twin_broken = True
        if self._twin is not None:
            self._twin.queue = []
        for check in [c for c in self._checks.values() if c.dry is None]:
            self._decide(check, True, remember=False)

    def _twin_verdict(self, check: _Check, records: list[TrialRecord]) -> None:
        """Judged on the trials that say something about the candidate: a failed reset or an estop of a twin station
        is not its fault (a policy crash is); with none of those, it goes on unscreened."""
        judged = [r for r in records if r.outcome not in NO_EVIDENCE or r.outcome == "crash"]
        if not judged:
            log.warning("the twin's trials of %s said nothing about it (%s): it reaches the fleet unscreened",
                        check.key, sorted({r.outcome for r in records}))
            self._decide(check, True, remember=False)
            return
        records = judged
        n = len(records)
        successes = sum(r.pass_at_1 for r in records)
        rate = successes / n
        need = self.config.min_success
        figures = {"trials": n, "successes": successes, "success_rate": rate,
                   "sim_seconds": sum(r.robot_seconds for r in records), "min_success": need, "passed": rate >= need}
        if rate >= need:
            self._decide(check, True, twin=figures, records=records)
            return
        self.totals["twin_rejected"] += 1
        outcomes = ", ".join(sorted({r.outcome for r in records if not r.pass_at_1}))
        self._decide(check, False, f"screened out by the digital twin before any robot time: {successes}/{n} "
                                   f"successes on the nominal task (screen.min_success {need:g}; failed: {outcomes})",
                     twin=figures, records=records)

    def _decide(self, check: _Check, passed: bool, reason: str = "", twin: dict[str, Any] | None = None,
                records: list[TrialRecord] | None = None, remember: bool = True) -> None:
        self._checks.pop(check.key, None)
        verdict = Verdict(check.waiting[0].ev, check.waiting[0].member, passed, reason, list(records or ()), twin)
        if remember:
            self._verdicts[check.key] = verdict
        self._ready.extend(replace(verdict, ev=h.ev, member=h.member) for h in check.waiting)
