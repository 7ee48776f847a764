"""Low-level compliant control: policy actions -> joint torques (before the envelope clamps).

Cartesian impedance with gravity compensation (the default, `action_mode: cartesian`):
    tau = Jp^T (Kp (x* - x) - Dp v) + Jr^T (Kr e_R - Dr w) + Kn (q_home - q) - Dn qd + bias
with e_R the rotation error toward "gripper down, jaws at heading yaw". Damping follows
the configured damping ratio for a nominal end-effector mass / inertia. `joint` mode is a
PD toward joint targets with the same gravity compensation; `torque` mode passes the
policy's torques through (the envelope still clamps and checks them). Everything reads the
kinematics MuJoCo computed at the last step, so no extra mj_forward is spent per control step.

This runs once per control step, so it is written for speed: one 6 x nv Jacobian filled in
place by `mj_jacSite`, robot columns taken as a view when the robot's dofs are contiguous,
views of the robot's state made once per MjData (`_bind`), the target's cos/sin kept while the
yaw command stays the same, the pose error, the rotation error and the torque's elementwise
terms in plain floats (the same IEEE operations in the same order as the numpy form, so the
torques are bit for bit what `tau = J^T w; tau += Kn q_home; tau -= Kn q; tau -= Dn qd; tau += bias`
gives).
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from enpire.spec.model import ControllerSpec
from enpire.world.scene import BoundRobot, index_or_slice

EE_MASS_KG = 1.0  # nominal effective mass at the tool for the damping term
EE_INERTIA = 0.05  # kg m^2, nominal effective rotational inertia
JOINT_KP = 60.0  # N·m/rad, joint mode
DOWN = np.diag([-1.0, 1.0, -1.0])  # tool frame "pointing down" at yaw 0 (jaws along world x)


def target_rotation(yaw: float) -> np.ndarray:
    if not math.isfinite(yaw):  # NaN torques follow, which the envelope refuses to write
        return np.full((3, 3), np.nan)
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ DOWN


def rotation_error(xmat: list[float], yaw: float) -> tuple[float, float, float]:
    """0.5 * sum_i r_i x t_i: the axis-angle-like error from the current frame (row-major 3x3 `xmat`)
    toward target_rotation(yaw), whose columns are (-c, -s, 0), (-s, c, 0), (0, 0, -1)."""
    return _rotation_error_cs(xmat, math.cos(yaw), math.sin(yaw))


def _rotation_error_cs(xmat: list[float], c: float, s: float) -> tuple[float, float, float]:
    """rotation_error with the target's cos(yaw), sin(yaw) given."""
    r00, r01, r02, r10, r11, r12, r20, r21, _ = xmat
    # columns of the current frame: r0 = (r00, r10, r20), r1 = (r01, r11, r21), r2 = (r02, r12, r22)
    # r0 x t0, t0 = (-c, -s, 0); r1 x t1, t1 = (-s, c, 0); r2 x t2, t2 = (0, 0, -1)
    ex = (r20 * s) + (-r21 * c) + (-r12)
    ey = (-r20 * c) + (-r21 * s) + r02
    ez = (-r00 * s + r10 * c) + (r01 * c + r11 * s)
    return 0.5 * ex, 0.5 * ey, 0.5 * ez


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
        self._jac = np.zeros((6, model.nv))
        self._jacp, self._jacr = self._jac[:3], self._jac[3:]  # contiguous row blocks, filled in place
        self._q = index_or_slice(robot.qpos_adr)
        self._v = index_or_slice(robot.dof_adr)
        self._jv = self._jac[:, self._v]  # robot columns: a view when the dofs are contiguous, else bound per call
        self._kn_home = self.kn * self.home
        self._kn_home_f = tuple(self._kn_home.tolist())
        self._zero = np.zeros(robot.dof)
        self._site = int(robot.ee_site)
        self._yaw_key: float | None = None
        self._cs = (1.0, 0.0)
        self._data: mujoco.MjData | None = None

    def _bind(self, data: mujoco.MjData) -> None:
        """Views of `data` read every control step (MjData's arrays never move, so a view stays current).
        Non-contiguous robot dofs cannot be viewed; those few reads then gather per call (`_views`)."""
        self._data = data
        self._xpos = data.site_xpos[self._site]
        self._xmat = data.site_xmat[self._site]
        self._contiguous = isinstance(self._q, slice) and isinstance(self._v, slice)
        if self._contiguous:
            self._qv, self._qdv, self._biasv = data.qpos[self._q], data.qvel[self._v], data.qfrc_bias[self._v]

    def _views(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(q, qd, bias, robot Jacobian columns) for this control step."""
        if data is not self._data:
            self._bind(data)
        if self._contiguous:
            return self._qv, self._qdv, self._biasv, self._jv
        return data.qpos[self._q], data.qvel[self._v], data.qfrc_bias[self._v], self._jac[:, self._v]

    @property
    def action_size(self) -> int:
        return 5 if self.mode == "cartesian" else self.robot.dof + 1

    def bias(self, data: mujoco.MjData) -> np.ndarray:
        return data.qfrc_bias[self._v] if self.gravity else self._zero

    def command(self, data: mujoco.MjData, action: np.ndarray) -> tuple[np.ndarray | list[float], float]:
        """(arm torques, grip command). Non-finite actions give non-finite torques (the envelope stops them).
        The cartesian mode returns the torques as a list of floats (what `Envelope.write` reads them as)."""
        if self.mode == "torque":
            return np.array(action[:-1], dtype=float), float(action[-1])
        if self.mode == "joint":
            q, qd = data.qpos[self._q], data.qvel[self._v]
            tau = JOINT_KP * (action[:-1] - q) - 2.0 * math.sqrt(JOINT_KP * 0.1) * qd + self.bias(data)
            return tau, float(action[-1])
        a0, a1, a2, a3, a4 = action.tolist()
        if not math.isfinite(a0 + a1 + a2 + a3):  # NaN/Inf in the pose: NaN torques, refused by the envelope
            return np.full(self.robot.dof, math.nan), a4
        mujoco.mj_jacSite(self.model, data, self._jacp, self._jacr, self._site)
        if data is not self._data:
            self._bind(data)
        if self._contiguous:
            q, qd, bias, jac = self._qv, self._qdv, self._biasv, self._jv
        else:
            q, qd, bias, jac = self._views(data)
        x0, x1, x2 = self._xpos.tolist()
        if a3 != self._yaw_key or a3 == 0.0:  # policies hold one heading for many steps (+-0 differ in sin)
            self._cs, self._yaw_key = (math.cos(a3), math.sin(a3)), a3
        c, s = self._cs
        # rotation_error(xmat, a3), inlined
        r00, r01, r02, r10, r11, r12, r20, r21, _ = self._xmat.tolist()
        rx = 0.5 * ((r20 * s) + (-r21 * c) + (-r12))
        ry = 0.5 * ((-r20 * c) + (-r21 * s) + r02)
        rz = 0.5 * ((-r00 * s + r10 * c) + (r01 * c + r11 * s))
        kp, kr, dp, dr = self.kp, self.kr, self.dp, self.dr
        v0, v1, v2, w0, w1, w2 = np.dot(jac, qd).tolist()  # the tool's twist
        wrench = np.array((kp * (a0 - x0) - dp * v0, kp * (a1 - x1) - dp * v1, kp * (a2 - x2) - dp * v2,
                           kr * rx - dr * w0, kr * ry - dr * w1, kr * rz - dr * w2))
        t = np.dot(wrench, jac).tolist()
        if len(t) != 6 or not self.gravity:
            return self._tail(t, q.tolist(), qd.tolist(), bias.tolist()), a4
        # six joints with gravity compensation (both robots): the elementwise tail unrolled
        kn, dn = self.kn, self.dn
        t0, t1, t2, t3, t4, t5 = t
        h0, h1, h2, h3, h4, h5 = self._kn_home_f
        q0, q1, q2, q3, q4, q5 = q.tolist()
        u0, u1, u2, u3, u4, u5 = qd.tolist()
        b0, b1, b2, b3, b4, b5 = bias.tolist()
        return [(((t0 + h0) - kn * q0) - dn * u0) + b0, (((t1 + h1) - kn * q1) - dn * u1) + b1,
                (((t2 + h2) - kn * q2) - dn * u2) + b2, (((t3 + h3) - kn * q3) - dn * u3) + b3,
                (((t4 + h4) - kn * q4) - dn * u4) + b4, (((t5 + h5) - kn * q5) - dn * u5) + b5], a4

    def _tail(self, t: list[float], q: list[float], qd: list[float], bias: list[float]) -> list[float]:
        """J^T w + Kn (q_home - q) - Dn qd (+ bias), elementwise in the order the numpy form rounds it."""
        kn, dn, h = self.kn, self.dn, self._kn_home_f
        if not self.gravity:
            return [((ti + hi) - kn * qi) - dn * vi for ti, hi, qi, vi in zip(t, h, q, qd)]
        return [(((ti + hi) - kn * qi) - dn * vi) + bi for ti, hi, qi, vi, bi in zip(t, h, q, qd, bias)]

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
