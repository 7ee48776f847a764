"""The station's model as a mirror of a real arm: what a physical adapter writes after it reads the robot.

The controller (Jacobian, gravity compensation) and the envelope (joint, speed and workspace checks) read
the station's MjData. Behind the MuJoCo adapter that data is the simulated world; behind a physical adapter
it must follow the real arm, so the adapter writes the joint state it reads with `mirror_state` (which
recomputes positions, site poses and bias forces with one mj_forward) and the command it applied with
`mirror_command` (what trajectories record as `ctrl`). Contacts of the mirror are the model's, not the real
cell's: contact force is the arm's own reflex there (docs/stations.md, safety table).
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from enpire.hardware.adapter import AdapterBinding


def mirror_state(binding: AdapterBinding, joint_pos: Sequence[float], joint_vel: Sequence[float],
                 grip_pos: Sequence[float] | None = None) -> None:
    """Write the arm's joint positions (rad), velocities (rad/s) and, if known, gripper joint positions into
    the station's model, then recompute its kinematics and bias forces."""
    d, r = binding.data, binding.robot
    d.qpos[r.qpos_adr] = np.asarray(joint_pos, dtype=float)
    d.qvel[r.dof_adr] = np.asarray(joint_vel, dtype=float)
    if grip_pos is not None:
        d.qpos[r.grip_qpos_adr] = np.asarray(grip_pos, dtype=float)
    mujoco.mj_forward(binding.model, d)


def mirror_command(binding: AdapterBinding, applied: Sequence[float]) -> None:
    """Record the command the arm applied (arm torques, then gripper controls) in the model's `ctrl`."""
    r = binding.robot
    n = len(r.arm_act)
    binding.data.ctrl[r.arm_act] = np.asarray(applied[:n], dtype=float)
    binding.data.ctrl[r.grip_act] = np.asarray(applied[n:], dtype=float)
