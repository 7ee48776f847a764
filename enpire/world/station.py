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
from enpire.records import Candidate, SafetyEvent, TrialRecord, TrialRequest
from enpire.spec.fingerprint import done_sha256
from enpire.spec.model import ExperimentSpec
from enpire.world.api import AttemptFeedback, Policy
from enpire.world.controller import Controller
from enpire.world.envelope import Envelope
from enpire.world.estop import estop_flag
from enpire.world.recording import TrajectoryRecorder, VideoRecorder
from enpire.world.replay import ReplayRecorder
from enpire.world.reset import verified_reset
from enpire.world.rollout import EarlyStop, run_attempts
from enpire.world.scene import build_scene, index_or_slice
from enpire.world.verifier import Verifier

log = logging.getLogger(__name__)
StepHook = Callable[[mujoco.MjModel, mujoco.MjData], None]
PolicyFactory = Callable[[ExperimentSpec, Candidate], Policy]


class PolicyCrash(Exception):
    """The policy raised or returned something unusable."""


class SimStation:
    def __init__(self, spec: ExperimentSpec, index: int = 0, step_hook: StepHook | None = None,
                 policy_factory: PolicyFactory | None = None) -> None:
        self.spec = spec
        self.index = index
        self.scene = build_scene(spec)
        m, r = self.scene.model, self.scene.robot
        self._hold = Controller(spec.robot.controller, "cartesian", m, r)
        self._ctl = Controller(spec.robot.controller, spec.policy.action_mode, m, r)
        self._envelope = Envelope(spec.safety, m, r)
        done_doc, task_doc = spec.resolved["done"], spec.resolved["task"]
        verifier = plugins.resolve("verifiers", spec.done.verifier)  # the frozen judge: 'predicate' unless a plugin's
        self._verifier: Verifier = verifier(spec.done, self.scene.physics.quantity, spec.fingerprints.done_sha256,
                                  lambda: done_sha256(done_doc, task_doc))
        self._step_hook = step_hook
        self._policy_factory = policy_factory  # candidate -> Policy (enpire.fleet.stations wires enpire.policy's)
        self._failed_resets = 0
        self._faulty = False
        self._nsub = spec.physics_steps_per_control
        self._dt = spec.control_dt
        # Per-control-step reads go through views (contiguous slices) and a cached gripper command.
        self._qsel = index_or_slice(r.qpos_adr)
        self._vsel = index_or_slice(r.dof_adr)
        self._gsel = index_or_slice(r.grip_qpos_adr)
        self._grip_key: float | None = None
        self._grip_cmd = r.builder.grip_ctrl(0.0)
        self._grip_nan = np.full(len(r.grip_act), np.nan)
        self._estop = estop_flag()  # read at every control step by run_attempts (enpire.world.estop)
        # Hoisted for step() and observe(): MjData's arrays never move, so views made once stay current.
        d, p = self.scene.data, self.scene.physics
        self._model, self._data, self._physics = m, d, p
        self._invalidate = p.invalidate
        self._ee_xpos = d.site_xpos[r.ee_site]
        self._views = (d.qpos[self._qsel] if isinstance(self._qsel, slice) else None,
                       d.qpos[self._gsel] if isinstance(self._gsel, slice) else None,
                       d.qvel[self._vsel] if isinstance(self._vsel, slice) else None)
        self._grip_opening = r.builder.grip_opening
        self._task_observe = self.scene.task.observe
        self._early_stop = EarlyStop.from_spec(spec, p, d)

    @property
    def faulty(self) -> bool:
        return self._faulty

    @property
    def action_size(self) -> int:
        return self._ctl.action_size

    def close(self) -> None:
        pass

    # -- observation -------------------------------------------------------------------------
    def observe(self) -> dict[str, np.ndarray]:
        """A fresh observation (every array a copy the policy may keep or modify)."""
        p, (q, g, qd) = self._physics, self._views
        if q is None or g is None or qd is None:  # a robot whose joints are not contiguous: gather
            d = self._data
            q, g, qd = d.qpos[self._qsel], d.qpos[self._gsel], d.qvel[self._vsel]
        obs = {
            "ee_pos": self._ee_xpos.copy(),
            "ee_yaw": np.array([p.ee_yaw()]),
            "grip": np.array([self._grip_opening(g)]),
            "joint_pos": q.copy(),
            "joint_vel": qd.copy(),
        }
        obs.update(self._task_observe(p))
        return obs

    def state(self) -> dict[str, float]:
        """Every state_space quantity, read from the simulator."""
        return {q: self.scene.physics.quantity(q) for q in self.spec.task.state_space}

    # -- one control step --------------------------------------------------------------------
    def step(self, action: np.ndarray, step: int) -> tuple[int, SafetyEvent | None]:
        """Controller -> envelope -> physics -> envelope check. Returns (clamps, breach)."""
        m, d, envelope = self._model, self._data, self._envelope
        tau, g = self._ctl.command(d, action)
        if g != self._grip_key:  # policies hold one grip command for many steps: map it once
            finite = math.isfinite(g)
            self._grip_cmd = self.scene.robot.builder.grip_ctrl(g) if finite else self._grip_nan
            self._grip_key = g if finite else None
        clamps, event = envelope.write(d, tau, self._grip_cmd, step)
        if event is None:
            mujoco.mj_step(m, d, self._nsub)
            self._invalidate()  # the task's quantities are read afresh (once) for the new state
            event = envelope.check(m, d, step)
        if event is not None:
            envelope.stop(d)
        if self._step_hook is not None:
            self._step_hook(m, d)
        return clamps, event

    def reset(self, seed: int) -> bool:
        """Verified reset from `seed`; False (and maybe faulty) when every reset attempt failed."""
        res = verified_reset(self.spec, self.scene, self._hold, self._envelope, np.random.default_rng(seed))
        self._invalidate()
        self._last_reset = res
        self._failed_resets = 0 if res.ok else self._failed_resets + 1
        if self._failed_resets >= self.spec.task.reset.faulty_after:
            self._faulty = True
            log.warning("station %d marked faulty after %d failed resets", self.index, self._failed_resets)
        return res.ok

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
