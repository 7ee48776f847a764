"""SimStation: one MuJoCo robot cell running trials (reset -> attempts under the envelope -> verdict).

Constructed from the spec alone (so a worker process can build its own); deterministic
for a seed. The policy sees observation copies and returns action vectors; it never gets a
handle on the physics, the envelope or the verifier.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import mujoco
import numpy as np

from enpire import plugins
from enpire.hardware import gates
from enpire.hardware.adapter import AdapterBinding, Command, RobotAdapter, RobotStopped
from enpire.hardware.registry import adapter_class
from enpire.records import Candidate, SafetyEvent, TrialRecord, TrialRequest
from enpire.spec.fingerprint import done_sha256
from enpire.spec.model import ExperimentSpec
from enpire.world.api import AttemptFeedback, Policy
from enpire.world.controller import Controller
from enpire.world.dynamics import ActionDelay, ObservationNoise
from enpire.world.envelope import Envelope
from enpire.world.estop import estop_flag
from enpire.world.recording import TrajectoryRecorder, VideoRecorder
from enpire.world.replay import ReplayRecorder
from enpire.world.reset import verified_reset
from enpire.world.rollout import EarlyStop, run_attempts
from enpire.world.scene import build_scene
from enpire.world.verifier import Verifier

log = logging.getLogger(__name__)
StepHook = Callable[[mujoco.MjModel, mujoco.MjData], None]
PolicyFactory = Callable[[ExperimentSpec, Candidate], Policy]


class PolicyCrash(Exception):
    """The policy raised or returned something unusable."""


class SimStation:
    def __init__(self, spec: ExperimentSpec, index: int = 0, step_hook: StepHook | None = None,
                 policy_factory: PolicyFactory | None = None, adapter: type[RobotAdapter] | None = None,
                 verifier: Callable[..., Verifier] | None = None) -> None:
        """`adapter`: the robot's adapter class (default: the one `robot.adapter` names). A class declaring
        physical=True is refused (SpecError naming station.confirm_motion, exit 2) before it is constructed
        unless the spec's station.confirm_motion or station.dry_run is true. `verifier`: a judge other than
        the one done.verifier names (training data, enpire.detector.collect), called with the scene too."""
        self.spec = spec
        self.index = index
        adapter_cls = adapter if adapter is not None else adapter_class(spec.robot.adapter)
        gates.refuse(gates.motion_problems(adapter_cls, spec) + gates.dynamics_problems(adapter_cls, spec))
        # (before anything could reach the hardware)
        self.scene = build_scene(spec)
        m, r = self.scene.model, self.scene.robot
        self._hold = Controller(spec.robot.controller, "cartesian", m, r)
        self._ctl = Controller(spec.robot.controller, spec.policy.action_mode, m, r)
        self._envelope = Envelope(spec.safety, m, r)
        done_doc, task_doc = spec.resolved["done"], spec.resolved["task"]
        judge = verifier or plugins.resolve("verifiers", spec.done.verifier)  # the frozen judge: 'predicate' unless
        # a plugin's; a camera-based one (needs_scene) gets the scene
        scene = {"scene": self.scene} if verifier is not None or getattr(judge, "needs_scene", False) else {}
        if getattr(judge, "needs_scene", False) and gates.is_physical(adapter_cls):
            scene["shadow"] = False  # a real arm: the model is a mirror of the joints only, no state to judge
        self._verifier: Verifier = judge(spec.done, self.scene.physics.quantity, spec.fingerprints.done_sha256,
                                            lambda: done_sha256(done_doc, task_doc), **scene)
        self._step_hook = step_hook
        self._policy_factory = policy_factory  # candidate -> Policy (enpire.fleet.stations wires enpire.policy's)
        self._failed_resets = 0
        self._faulty = False
        self._nsub = spec.physics_steps_per_control
        self._dt = spec.control_dt
        # A cached gripper command: policies hold one grip command for many steps.
        self._grip_key: float | None = None
        self._grip_cmd = r.builder.grip_ctrl(0.0)
        self._grip_nan = np.full(len(r.grip_act), np.nan)
        self._estop = estop_flag()  # read at every control step by run_attempts (enpire.world.estop)
        # Hoisted for step() and observe(): bound methods, and MjData (its arrays never move).
        d, p = self.scene.data, self.scene.physics
        self._model, self._data, self._physics = m, d, p
        self._invalidate = p.invalidate
        self._ee_xpos = d.site_xpos[r.ee_site]  # the tool centre point, a live view (tests read it)
        self._task_observe = self.scene.task.observe
        self._early_stop = EarlyStop.from_spec(spec, p, d)
        # The robot: controller -> envelope clamp -> adapter.send_command -> applied (enpire.hardware).
        self.adapter: RobotAdapter = adapter_cls(AdapterBinding(
            m, d, r, self._nsub, self._dt, dict(spec.resolved["robot"].get("options") or {})))
        gates.refuse(gates.compatibility_problems(self.adapter, spec))
        self.dry_run = spec.station.dry_run  # no command leaves the station (rollout ends the trial `estopped`)
        self.applied: Command | None = None  # the last command the adapter applied (None: none yet, or dry run)
        self.withheld = 0  # commands a dry run computed and did not send
        self.withheld_command: Command | None = None  # the last of them
        self._command, self._clamp, self._check = self._ctl.command, self._envelope.clamp, self._envelope.check
        self._send, self._proprio = self.adapter.send_command, self.adapter.observation
        self._bounds = self.adapter.limits().command_bounds()
        # A real arm: stopped at the end of every trial, every command it reports applied checked against the
        # envelope (a copy is sent, so an adapter editing it in place is caught), its real state checked after
        # the (model-only) reset. The simulated robot is ours and skips these checks.
        self._physical = gates.is_physical(adapter_cls)
        self._caps = [float(c) for c in self._envelope.torque_limits]
        if self.dry_run:
            self.step = self._dry_step  # type: ignore[method-assign]  # the same call, nothing sent
        # dynamics (a sim-to-sim gap, enpire.world.dynamics): actuation delay and sensor noise, when declared
        dyn = spec.dynamics
        self._delay = ActionDelay(dyn.latency_steps) if dyn.latency_steps else None
        self._noise = ObservationNoise(dyn.obs_noise) if dyn.obs_noise > 0 else None
        self.adapter.connect()
        self._closed = False

    @property
    def faulty(self) -> bool:
        return self._faulty

    @property
    def action_size(self) -> int:
        return self._ctl.action_size

    def close(self) -> None:
        """Stop the robot and close its adapter (idempotent)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        try:
            self._adapter_stop()
        finally:
            self.adapter.disconnect()
            release = getattr(self._verifier, "close", None)  # a camera-based judge's renderer
            if release is not None:
                release()

    def safe_stop(self) -> None:
        """The envelope's safe stop (gravity compensation and damping, on the model), then the adapter's own."""
        self._envelope.stop(self._data)
        self._adapter_stop()

    def _adapter_stop(self) -> None:
        """The adapter's own stop, never in a dry run (a stop is a command too); a stop that raises is logged and
        the caller's verdict (a breach, an estop) stands."""
        if self.dry_run:
            return
        try:
            self.adapter.safe_stop()
        except Exception:
            log.exception("station %d: adapter %r failed to stop the robot", self.index, self.adapter.name)

    # -- observation -------------------------------------------------------------------------
    def observe(self) -> dict[str, np.ndarray]:
        """A fresh observation (every array a copy the policy may keep or modify): the adapter's proprioception,
        then the task's part."""
        obs = self._proprio()
        task = self._task_observe(self._physics)
        obs.update(task if self._noise is None else self._noise(task))
        return obs

    def state(self) -> dict[str, float]:
        """Every state_space quantity, read from the simulator."""
        return {q: self.scene.physics.quantity(q) for q in self.spec.task.state_space}

    # -- one control step --------------------------------------------------------------------
    def step(self, action: np.ndarray, step: int) -> tuple[int, SafetyEvent | None]:
        """Controller -> envelope clamp -> adapter.send_command (the MuJoCo adapter runs the physics) -> envelope
        check of the new state. Returns (clamps, breach); clamps count the adapter's own clipping too."""
        d = self._data
        if self._delay is not None:  # dynamics.latency_steps: the robot gets an older action
            action = self._delay(action)
        tau, g = self._command(d, action)
        if g != self._grip_key:  # policies hold one grip command for many steps: map it once
            finite = math.isfinite(g)
            self._grip_cmd = self.scene.robot.builder.grip_ctrl(g) if finite else self._grip_nan
            self._grip_key = g if finite else None
        command, clamps, event = self._clamp(tau, self._grip_cmd, step)
        if event is None:
            try:
                applied = self._send(list(command) if self._physical else command)
            except RobotStopped as stopped:  # the robot's own reflex stopped it (enpire.hardware.adapter)
                event = SafetyEvent(stopped.kind, step, stopped.value, stopped.limit, f"robot: {stopped.detail}")
            else:
                if applied is not command:  # the adapter clipped further: count it, keep what the robot got
                    changed, event = self._record_applied(command, applied, step)
                    clamps += changed
                self.applied = applied
                self._invalidate()  # the task's quantities are read afresh (once) for the new state
                event = event or self._check(self._model, d, step)
        if event is not None:
            self.safe_stop()
        if self._step_hook is not None:
            self._step_hook(self._model, d)
        return clamps, event

    def _dry_step(self, action: np.ndarray, step: int) -> tuple[int, SafetyEvent | None]:
        """station.dry_run: controller and envelope on what the adapter observes; the command is counted and
        dropped (send_command is never called, so the robot, simulated or real, does not move)."""
        d = self._data
        tau, g = self._command(d, action)
        if g != self._grip_key:
            finite = math.isfinite(g)
            self._grip_cmd = self.scene.robot.builder.grip_ctrl(g) if finite else self._grip_nan
            self._grip_key = g if finite else None
        command, clamps, event = self._clamp(tau, self._grip_cmd, step)
        if event is None:
            self.withheld, self.withheld_command = self.withheld + 1, command
            self._invalidate()
            event = self._check(self._model, d, step)  # the observed state (a real arm moved by hand, say)
        if self._step_hook is not None:
            self._step_hook(self._model, d)
        return clamps, event

    def _record_applied(self, command: Command, applied: Command, step: int) -> tuple[int, SafetyEvent | None]:
        """(entries the adapter changed, counted as clamps; a breach when what it applied is not a command within
        its own limits or the envelope's torque caps: the robot already got it, so the trial stops `unsafe`). The
        model's `ctrl` is set to what it applied, so trajectories and replays record what the robot got."""
        lo, hi = self._bounds
        n = len(self.scene.robot.arm_act)
        bad = len(applied) != len(command) or any(not (a <= v <= b) for v, a, b in zip(applied, lo, hi))
        over = [] if bad else [(abs(v), c) for v, c in zip(applied[:n], self._caps) if abs(v) > c + 1e-9]
        if bad or over:
            value, limit = over[0] if over else (None, None)
            return 0, SafetyEvent("applied_command", step, value, limit,
                                  f"adapter {self.adapter.name!r} applied {list(applied)!r} for {list(command)!r}: "
                                  + ("not a command within its own limits" if bad else
                                     "beyond the envelope's torque caps"))
        r = self.scene.robot
        self._data.ctrl[r.arm_act] = applied[:n]
        self._data.ctrl[r.grip_act] = applied[n:]
        return sum(a != c for a, c in zip(applied, command)), None

    def reset(self, seed: int) -> bool:
        """Verified reset from `seed`; False (and maybe faulty) when every reset attempt failed."""
        res = verified_reset(self.spec, self.scene, self._hold, self._envelope, np.random.default_rng(seed),
                             self.index)
        if self._physical and res.ok:
            res.problems = self._real_state_problems()
            res.ok = not res.problems
        self._invalidate()
        if self._delay is not None:
            self._delay.begin()
        if self._noise is not None:
            self._noise.begin(seed)
        self._last_reset = res
        self._failed_resets = 0 if res.ok else self._failed_resets + 1
        if self._failed_resets >= self.spec.task.reset.faulty_after:
            self._faulty = True
            log.warning("station %d marked faulty after %d failed resets", self.index, self._failed_resets)
        return res.ok

    def _real_state_problems(self) -> list[str]:
        """A real arm after the reset: the reset settled the model only, so read the arm (the adapter mirrors it
        into the model) and check it against the envelope before any command goes out."""
        self._proprio()
        event = self._check(self._model, self._data, 0)
        return [] if event is None else [f"the real arm is outside the envelope after the reset: {event.kind} "
                                         f"value={event.value} limit={event.limit} (move it back by hand)"]

    @property
    def reset_problems(self) -> list[str]:
        """What the last failed reset found wrong (empty after a good one)."""
        last = getattr(self, "_last_reset", None)
        return list(last.problems) if last is not None and not last.ok else []

    def recheck_reset(self, seed: int) -> bool:
        """A person says the scene is fixed: verify a reset again; a good one returns a station that failed resets
        (faulty) to service. No trial, no robot time, no evidence."""
        self._failed_resets = 0  # the person's fix starts a fresh count
        ok = self.reset(seed)
        if ok:
            self._faulty = False
        return ok

    # -- one trial ---------------------------------------------------------------------------
    def run_trial(self, request: TrialRequest, policy: Policy | None = None) -> TrialRecord:
        t0 = time.perf_counter()
        rec = TrialRecord(trial_id=request.trial_id, iteration=request.iteration, station=self.index,
                          seed=request.seed, outcome="reset_failed", attempts=0, success_attempt=None,
                          pass_at_1=False, pass_at_k=False, robot_seconds=0.0, wall_s=0.0, steps=0, clamps=0)
        if self._faulty or not self.reset(request.seed):
            rec.reason = "station faulty" if self._faulty and not hasattr(self, "_last_reset") else (
                "reset failed: " + "; ".join(self._last_reset.problems))
            rec.final_state = self._safe_state()
            rec.wall_s = time.perf_counter() - t0
            return rec
        try:
            if policy is None:
                if self._policy_factory is None:
                    raise RuntimeError("SimStation: no policy given and no policy_factory "
                                       "(build stations with enpire.fleet.stations.make_station)")
                policy = self._policy_factory(self.spec, request.candidate)
        except Exception:
            rec.outcome, rec.error = "crash", traceback.format_exc()
            rec.wall_s = time.perf_counter() - t0
            return rec
        camera = self.scene.task.default_camera
        video: VideoRecorder | ReplayRecorder | None = (
            VideoRecorder(self.spec, self.scene.model, camera) if request.record_video
            else ReplayRecorder(self.spec, self.scene.model, camera) if request.record_replay else None)
        traj = self._trajectory_recorder(camera) if request.record_trajectory else None
        out = Path(request.out_dir)
        try:
            run_attempts(self, policy, rec, video, traj)
        finally:
            if self._physical:  # whatever ended the trial, the real arm does not keep its last command
                self._adapter_stop()
            if isinstance(video, VideoRecorder):
                rec.video = video.save(out / f"{request.trial_id}.mp4")
                video.close()
            elif isinstance(video, ReplayRecorder):
                rec.replay = video.save(out / f"{request.trial_id}.replay.npz")
        rec.final_state = self._safe_state()
        if traj is not None:
            try:
                self._keep_trajectory(traj, rec, request, out)
            finally:
                traj.close()
        rec.wall_s = time.perf_counter() - t0
        return rec

    # -- recording (record.*, docs/data.md) ---------------------------------------------------------
    def _trajectory_recorder(self, camera: str) -> TrajectoryRecorder:
        """Arrays for the longest episode this spec allows (every attempt to its time limit)."""
        spec = self.spec
        steps = math.ceil(spec.done.time_limit_s / self._dt - 1e-9) * spec.done.attempts
        return TrajectoryRecorder(spec, self._model, self._data, self._physics.quantity, steps, camera,
                                  max_bytes=spec.record.max_mb * 2**20)

    def _keep_trajectory(self, traj: TrajectoryRecorder, rec: TrialRecord, request: TrialRequest, out: Path) -> None:
        """Write the trajectory beside the trial when `record.trajectories` selects its outcome (a request that
        asks for one under record.trajectories=none keeps it whatever the outcome)."""
        record = self.spec.record
        if not traj.n or (record.enabled and not record.keeps(rec.pass_at_k)):
            return
        from dataclasses import asdict

        s = self.spec
        meta = {**rec.to_dict(), "candidate": asdict(request.candidate), "task": s.task.name, "robot": s.robot.name,
                "action_mode": s.policy.action_mode, "control_dt": self._dt, "reason": rec.reason,
                "envelope": {"torque_limit_nm": s.safety.torque_limit_nm, "workspace_low": list(s.safety.workspace.low),
                             "workspace_high": list(s.safety.workspace.high)},
                "done_sha256": s.fingerprints.done_sha256, "spec_sha256": s.fingerprints.spec_sha256}
        rec.trajectory = traj.save(out / f"{request.trial_id}.npz", meta)

    def _safe_state(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for q in self.spec.task.state_space:
            v = self.scene.physics.quantity(q)
            out[q] = v if np.isfinite(v) else None
        return out

    def feedback(self, attempt: int, reason: str, quantities: dict[str, float]) -> AttemptFeedback:
        return AttemptFeedback(attempt=attempt, reason=reason, quantities=dict(quantities))
