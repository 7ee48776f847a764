"""The simulated robot: the first RobotAdapter. Its `send_command` writes the actuators and runs the physics.

MuJoCo clamps the controls of ctrllimited actuators to their ctrlrange while it steps but leaves `data.ctrl`
as written; this adapter clips first, so `data.ctrl` (what trajectories and replays record) and the returned
command are what the physics applied. The envelope's caps lie inside those ranges, so on the station's path
the clip finds nothing to do: one pass of float comparisons, and the command list itself comes back.

Everything per control step reads views made once (MjData's arrays never move) and plain floats.
"""

from __future__ import annotations

import math
from typing import ClassVar

import mujoco
import numpy as np

from enpire.hardware.adapter import (
    AdapterBinding,
    AdapterCapabilities,
    AdapterLimits,
    Command,
    Proprioception,
)
from enpire.world.robot_binding import index_or_slice

_HALF_PI = math.pi / 2


class MujocoAdapter:
    """The robot of the station's MuJoCo world (no hardware): physical = False, so it never needs
    `station.confirm_motion`."""

    name: ClassVar[str] = "mujoco"
    physical: ClassVar[bool] = False

    def __init__(self, binding: AdapterBinding) -> None:
        m, d, r = binding.model, binding.data, binding.robot
        self.binding = binding
        self._model, self._data, self._nsub = m, d, int(binding.physics_steps_per_control)
        actuators = np.r_[np.asarray(r.arm_act, dtype=int), np.asarray(r.grip_act, dtype=int)]
        self._ctrl_sel = index_or_slice(actuators)  # arm then gripper: a slice when they sit side by side
        self._ctrl = d.ctrl
        limited = m.actuator_ctrllimited[actuators].astype(bool)
        ranges = np.where(limited[:, None], m.actuator_ctrlrange[actuators], [-math.inf, math.inf])
        self._lo = tuple(float(v) for v in ranges[:, 0])
        self._hi = tuple(float(v) for v in ranges[:, 1])
        joints = [int(np.flatnonzero(m.jnt_qposadr == a)[0]) for a in r.qpos_adr]
        jrange = np.where(m.jnt_limited[joints].astype(bool)[:, None], m.jnt_range[joints], [-math.inf, math.inf])
        n = len(r.arm_act)
        self._limits = AdapterLimits(
            joint_range_rad=tuple((float(a), float(b)) for a, b in jrange),
            torque_nm=tuple(zip(self._lo[:n], self._hi[:n])),
            grip_ctrl_range=tuple(zip(self._lo[n:], self._hi[n:])),
        )
        # observation views (contiguous robots: views; others gather per call)
        self._qsel, self._vsel, self._gsel = (index_or_slice(r.qpos_adr), index_or_slice(r.dof_adr),
                                              index_or_slice(r.grip_qpos_adr))
        self._views = (d.qpos[self._qsel] if isinstance(self._qsel, slice) else None,
                       d.qpos[self._gsel] if isinstance(self._gsel, slice) else None,
                       d.qvel[self._vsel] if isinstance(self._vsel, slice) else None)
        self._ee_xpos, self._ee_xmat = d.site_xpos[r.ee_site], d.site_xmat[r.ee_site]
        self._grip_opening = r.builder.grip_opening
        self._connected = False

    # -- lifecycle ---------------------------------------------------------------------------------
    def connect(self) -> None:
        self._connected = True

    @property
    def connected(self) -> bool:
        return self._connected

    def disconnect(self) -> None:
        self._connected = False

    def capabilities(self) -> AdapterCapabilities:
        return AdapterCapabilities(command="torque", moves_scene=True)

    def limits(self) -> AdapterLimits:
        return self._limits

    # -- per control step --------------------------------------------------------------------------
    def observation(self) -> Proprioception:
        """The simulated robot's state (copies). ee_yaw as TaskPhysics.ee_yaw computes it."""
        q, g, qd = self._views
        if q is None or g is None or qd is None:  # a robot whose joints are not contiguous: gather
            d = self._data
            q, g, qd = d.qpos[self._qsel], d.qpos[self._gsel], d.qvel[self._vsel]
        x = self._ee_xmat.tolist()  # row-major: the x axis is entries 0, 3, 6
        yaw = (math.atan2(-x[3], -x[0]) + _HALF_PI) % math.pi - _HALF_PI
        return {
            "ee_pos": self._ee_xpos.copy(),
            "ee_yaw": np.array([yaw]),
            "grip": np.array([self._grip_opening(g)]),
            "joint_pos": q.copy(),
            "joint_vel": qd.copy(),
        }

    def send_command(self, command: Command) -> Command:
        """Clip to the actuators' ctrlrange, write the controls and run one control period of physics."""
        for v, lo, hi in zip(command, self._lo, self._hi):
            if v < lo or v > hi:
                command = [min(max(v, lo), hi) for v, lo, hi in zip(command, self._lo, self._hi)]
                break
        self._ctrl[self._ctrl_sel] = command
        mujoco.mj_step(self._model, self._data, self._nsub)
        return command

    def safe_stop(self) -> None:
        """Nothing beyond the envelope's stop: the simulator holds the stop torques the envelope wrote, and
        no physics runs until the station steps again."""
