"""Dynamics other than the task's nominal model (`dynamics:`, docs/twin.md): a sim-to-sim gap.

The fleet can run a task whose physics differ from the model its digital twin runs, the way a real cell
differs from its simulation: slipperier contacts (`friction`), heavier objects (`mass`), actuation delay
(`latency_steps`) and sensor noise on the task's observation (`obs_noise`). The model's parts are changed once,
when the station is built; delay and noise act per control step, seeded by the trial so a trial replays the
same. The verifier and the envelope read the true state: only what the policy sees and what the robot gets
differ.
"""

from __future__ import annotations

from collections import deque

import mujoco
import numpy as np

from enpire.spec.model import DynamicsSpec
from enpire.world.robot_binding import BoundRobot

NOISE_STREAM = 0xD1A  # the noise's own seed stream beside the trial's reset (numpy SeedSequence entropy)


def task_bodies(model: mujoco.MjModel, robot: BoundRobot) -> np.ndarray:
    """Ids of the bodies that carry the task's geoms (not the robot's, not the world)."""
    bodies = set(int(b) for b in model.geom_bodyid[~robot.geom_mask]) - {0}
    robot_bodies = set(int(b) for b in model.geom_bodyid[robot.geom_mask])
    return np.array(sorted(bodies - robot_bodies), dtype=int)


def apply_to_model(dynamics: DynamicsSpec, model: mujoco.MjModel, data: mujoco.MjData, robot: BoundRobot) -> None:
    """Scale friction and the task's masses in place (before the first step), then recompute the model's derived
    constants (subtree masses, ...) as its compiler does."""
    if dynamics.friction == 1.0 and dynamics.mass == 1.0:
        return
    if dynamics.friction != 1.0:
        model.geom_friction[:, 0] *= dynamics.friction
    if dynamics.mass != 1.0:
        bodies = task_bodies(model, robot)
        model.body_mass[bodies] *= dynamics.mass
        model.body_inertia[bodies] *= dynamics.mass
    mujoco.mj_setConst(model, data)


class ActionDelay:
    """The robot applies the action of `steps` control steps ago; until then it holds the trial's first one."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self._queue: deque[np.ndarray] = deque()

    def begin(self) -> None:
        self._queue.clear()

    def __call__(self, action: np.ndarray) -> np.ndarray:
        queue = self._queue
        queue.append(np.array(action, dtype=float, copy=True))
        if len(queue) > self.steps + 1:
            queue.popleft()
        return queue[0]


class ObservationNoise:
    """Gaussian noise of std `sigma` on every value of the task's observation, from the trial's own stream."""

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma
        self._rng = np.random.default_rng(0)

    def begin(self, seed: int) -> None:
        self._rng = np.random.default_rng([int(seed), NOISE_STREAM])

    def __call__(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rng, sigma = self._rng, self.sigma
        return {k: np.asarray(v, dtype=float) + rng.normal(0.0, sigma, np.shape(v)) for k, v in obs.items()}
