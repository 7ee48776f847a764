"""The policy API: what every policy (scripted, learned, agent-written code) implements. The
protocol itself (Policy, Observation, AttemptFeedback, CARTESIAN_ACTION) lives in enpire.world.api,
beside the station that runs it, so the world never imports this package; helpers for policies live here.

A policy sees observations (a dict of named float arrays, the same keys for every step of a
task) and returns one action vector. For action_mode "cartesian" the action is
`[x, y, z, yaw, grip]`: an end-effector position target in the world frame (m), the
gripper's heading about the world z axis (rad; the gripper always points down), and the
grip command in [0, 1] (0 open, 1 closed). The station's controller turns targets into
torques and the envelope clamps and checks every command; nothing a policy returns can
switch that off.

`reset` starts an attempt. On a pass@k retry it receives `feedback` about the failed
attempt (the verifier's reason and the final task quantities) and the world is NOT reset.
"""

from __future__ import annotations

import numpy as np

from enpire.world.api import Observation


def flatten_observation(obs: Observation) -> np.ndarray:
    """The observation as one float vector, keys in sorted order (for learned policies)."""
    return np.concatenate([np.atleast_1d(np.asarray(obs[k], dtype=np.float64)).ravel() for k in sorted(obs)])
