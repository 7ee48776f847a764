"""Low-level compliant control: policy actions -> joint torques (before the envelope clamps).

Cartesian impedance with gravity compensation (the default, `action_mode: cartesian`):
    tau = Jp^T (Kp (x* - x) - Dp v) + Jr^T (Kr e_R - Dr w) + Kn (q_home - q) - Dn qd + bias
with e_R the rotation error toward "gripper down, jaws at heading yaw". Damping follows
the configured damping ratio for a nominal end-effector mass / inertia. `joint` mode is a
PD toward joint targets with the same gravity compensation; `torque` mode passes the
policy's torques through (the envelope still clamps and checks them). Everything reads the
kinematics MuJoCo computed at the last step, so no extra mj_forward is spent per control step.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from enpire.spec.model import ControllerSpec
from enpire.world.scene import BoundRobot

EE_MASS_KG = 1.0  # nominal effective mass at the tool for the damping term
EE_INERTIA = 0.05  # kg m^2, nominal effective rotational inertia
JOINT_KP = 60.0  # N·m/rad, joint mode
DOWN = np.diag([-1.0, 1.0, -1.0])  # tool frame "pointing down" at yaw 0 (jaws along world x)


def target_rotation(yaw: float) -> np.ndarray:
    if not math.isfinite(yaw):  # NaN torques follow, which the envelope refuses to write
        return np.full((3, 3), np.nan)
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ DOWN


class Controller:
    """Turns one action into arm torques and gripper controls."""

    def __init__(self, spec: ControllerSpec, mode: str, model: mujoco.MjModel, robot: BoundRobot) -> None:
        if mode not in ("cartesian", "joint", "torque"):
            raise ValueError(f"policy.action_mode: got {mode!r}; expected cartesian, joint or torque")
        self.mode = mode
        self.model = model
        self.robot = robot
        self.kp, self.kr = spec.stiffness_pos, spec.stiffness_rot
        self.dp = 2.0 * spec.damping_ratio * math.sqrt(spec.stiffness_pos * EE_MASS_KG)
        self.dr = 2.0 * spec.damping_ratio * math.sqrt(spec.stiffness_rot * EE_INERTIA)
        self.kn = spec.nullspace_stiffness
        self.dn = 2.0 * spec.damping_ratio * math.sqrt(max(spec.nullspace_stiffness, 1e-9) * 0.02)
        self.gravity = spec.gravity_compensation
        self.home = np.asarray(robot.builder.home_qpos, dtype=float)
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    @property
    def action_size(self) -> int:
        return 5 if self.mode == "cartesian" else self.robot.dof + 1

    def bias(self, data: mujoco.MjData) -> np.ndarray:
        return data.qfrc_bias[self.robot.dof_adr] if self.gravity else np.zeros(self.robot.dof)

    def command(self, data: mujoco.MjData, action: np.ndarray) -> tuple[np.ndarray, float]:
        """(arm torques, grip command). Non-finite actions give non-finite torques (the envelope stops them)."""
        r = self.robot
        q, qd = data.qpos[r.qpos_adr], data.qvel[r.dof_adr]
        if self.mode == "torque":
            return np.array(action[:-1], dtype=float), float(action[-1])
        if self.mode == "joint":
            tau = JOINT_KP * (action[:-1] - q) - 2.0 * math.sqrt(JOINT_KP * 0.1) * qd + self.bias(data)
            return tau, float(action[-1])
        mujoco.mj_jacSite(self.model, data, self._jacp, self._jacr, r.ee_site)
        jp, jr = self._jacp[:, r.dof_adr], self._jacr[:, r.dof_adr]
        x = data.site_xpos[r.ee_site]
        rot = data.site_xmat[r.ee_site].reshape(3, 3)
        tgt = target_rotation(float(action[3]))
        s = tgt @ rot.T
        s -= s.T  # = sum_i r_i x t_i in skew form; much cheaper than three np.cross calls
        e_r = 0.5 * np.array([s[2, 1], s[0, 2], s[1, 0]])
        force = self.kp * (action[:3] - x) - self.dp * (jp @ qd)
        moment = self.kr * e_r - self.dr * (jr @ qd)
        tau = jp.T @ force + jr.T @ moment + self.kn * (self.home - q) - self.dn * qd + self.bias(data)
        return tau, float(action[4])

    def hold_action(self, data: mujoco.MjData) -> np.ndarray:
        """An action that holds the current end-effector pose with the gripper open."""
        r = self.robot
        if self.mode == "cartesian":
            x = data.site_xpos[r.ee_site]
            xa = data.site_xmat[r.ee_site].reshape(3, 3)[:, 0]
            return np.array([x[0], x[1], x[2], math.atan2(-xa[1], -xa[0]), 0.0])
        if self.mode == "joint":
            return np.r_[data.qpos[r.qpos_adr], 0.0]
        return np.r_[self.bias(data), 0.0]
