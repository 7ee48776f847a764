"""Verified, randomized reset: sample the seeded init distribution, settle, check, retry."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import mujoco
import numpy as np

from enpire.spec.model import ExperimentSpec
from enpire.world.controller import Controller
from enpire.world.declarative import apply_init
from enpire.world.envelope import Envelope
from enpire.world.scene import Scene

log = logging.getLogger(__name__)

ARM_NOISE_KEY = "arm_joint_noise"
SETTLED_JOINT_SPEED = 0.2  # rad/s: an arm slower than this after settling counts as settled


@dataclass
class ResetResult:
    ok: bool
    attempts: int
    init: dict[str, float]
    problems: list[str]
    settle_steps: int = 0


def sample_init(spec: ExperimentSpec, rng: np.random.Generator, dof: int) -> tuple[dict[str, float], np.ndarray]:
    """One draw of every task.init range (sorted keys, so draws are stable); arm noise per joint."""
    values: dict[str, float] = {}
    noise = np.zeros(dof)
    for key in sorted(spec.task.init):
        r = spec.task.init[key]
        if key == ARM_NOISE_KEY:
            noise = rng.uniform(r.low, r.high, size=dof)
        else:
            values[key] = float(rng.uniform(r.low, r.high))
    return values, noise


def reset_once(spec: ExperimentSpec, scene: Scene, hold: Controller, envelope: Envelope,
               rng: np.random.Generator, station: int = 0) -> tuple[dict[str, float], list[str], int]:
    """Put the scene in a fresh random initial state, settle it, and list what is wrong with it."""
    m, d, r = scene.model, scene.data, scene.robot
    mujoco.mj_resetData(m, d)
    init, noise = sample_init(spec, rng, r.dof)
    d.qpos[r.qpos_adr] = np.asarray(r.builder.home_qpos) + noise
    d.qpos[r.grip_qpos_adr] = m.qpos0[r.grip_qpos_adr]
    apply_init(scene.physics, scene.task.spec.init_set, init)  # the yaml's `set:` targets, then the task's own code
    scene.task.initialize(scene.physics, init, rng)
    mujoco.mj_forward(m, d)
    nsub = spec.physics_steps_per_control
    steps = max(1, round(spec.task.reset.settle_s / spec.control_dt))
    target = hold.hold_action(d)
    grip = r.builder.grip_ctrl(0.0)
    problems: list[str] = []
    for k in range(steps):
        tau, _ = hold.command(d, target)
        _, event = envelope.write(d, tau, grip, k)
        mujoco.mj_step(m, d, nsub)
        event = event or envelope.check(m, d, k)
        if event is not None:
            problems.append(f"envelope breach while settling: {event.kind} value={event.value} limit={event.limit}")
            break
    mujoco.mj_forward(m, d)
    if not problems:
        speed = float(np.abs(d.qvel[r.dof_adr]).max())
        if speed > SETTLED_JOINT_SPEED:
            problems.append(f"robot not settled: joint speed {speed:.3f} rad/s > {SETTLED_JOINT_SPEED}")
        problems += scene.task.reset_problems(scene.physics, init)
    blocked = spec.task.reset.blocked_until
    if blocked is not None:  # the human-reset drill (docs/stations.md): `{station}` names one station's file
        path = blocked.replace("{station}", str(station))
        if not os.path.exists(path):
            problems.append(f"blocked until {path} exists (task.reset.blocked_until)")
    return init, problems, steps


def verified_reset(spec: ExperimentSpec, scene: Scene, hold: Controller, envelope: Envelope,
                   rng: np.random.Generator, station: int = 0) -> ResetResult:
    """Reset until one passes its checks, at most task.reset.max_attempts times."""
    problems: list[str] = []
    init: dict[str, float] = {}
    for attempt in range(1, spec.task.reset.max_attempts + 1):
        init, problems, steps = reset_once(spec, scene, hold, envelope, rng, station)
        if not problems:
            return ResetResult(True, attempt, init, [], steps)
        log.info("reset attempt %d failed: %s", attempt, "; ".join(problems))
    return ResetResult(False, spec.task.reset.max_attempts, init, problems)
