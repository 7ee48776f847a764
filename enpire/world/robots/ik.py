"""Numerical inverse kinematics for a robot's tool centre point, used to find home postures.

`solve_pose` runs damped least squares (scipy's trust-region least_squares on the position
error and the tool-frame axis errors, with the analytic Jacobian from `mj_jacSite`) from
several seeded starts inside the joint ranges, and keeps the solution that meets the pose
with the most margin to the hard joint limits. It is an offline tool: the result is written
into the robot builder's `home_qpos` (see enpire/world/robots/jaco.py), and a test checks
that the recorded posture still meets its pose.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import mujoco
import numpy as np
from scipy.optimize import least_squares

from enpire.world.robots.base import RobotBuilder

log = logging.getLogger(__name__)
ROT_WEIGHT = 0.2  # m per unit of axis error: 1 mm of position weighs like 0.005 of axis mismatch


def down_rotation(yaw: float) -> np.ndarray:
    """Tool frame pointing down with the jaw axis at heading `yaw` (= controller.target_rotation)."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[-c, -s, 0.0], [-s, c, 0.0], [0.0, 0.0, -1.0]])


@dataclass(frozen=True)
class IkResult:
    qpos: np.ndarray  # arm joints, rad
    pos_error_m: float
    axis_error: float  # largest |tool axis - target axis| over x and z
    limit_margin_rad: float  # smallest distance to a hard joint limit (inf when no joint is limited)


def _better(a: IkResult, b: IkResult) -> bool:
    """More margin to the joint limits wins; within 0.05 rad of margin, the smaller joint angles
    (a posture closer to the robot's zero, e.g. the base facing the table rather than turned away)."""
    if abs(a.limit_margin_rad - b.limit_margin_rad) > 0.05:
        return a.limit_margin_rad > b.limit_margin_rad
    return float(np.abs(a.qpos).sum()) < float(np.abs(b.qpos).sum())


def compiled(builder: RobotBuilder) -> tuple[mujoco.MjModel, np.ndarray, np.ndarray, int]:
    """The robot alone, compiled: (model, arm qpos addresses, arm dof addresses, tcp site id)."""
    root = builder.build()
    m = mujoco.MjModel.from_xml_string(root.to_xml_string(), root.get_assets())
    joints = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in builder.arm_joints]
    site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, builder.ee_site)
    return m, m.jnt_qposadr[joints], m.jnt_dofadr[joints], site


def solve_pose(builder: RobotBuilder, pos: np.ndarray, yaw: float = 0.0, starts: int = 40,
               seed: int = 0) -> IkResult:
    """Arm joints putting the tool centre at `pos` (robot base frame), pointing down at heading `yaw`."""
    m, qadr, vadr, site = compiled(builder)
    d = mujoco.MjData(m)
    joints = [int(np.flatnonzero(m.jnt_qposadr == a)[0]) for a in qadr]
    limited = m.jnt_limited[joints].astype(bool)
    lo = np.where(limited, m.jnt_range[joints, 0], -2 * np.pi)
    hi = np.where(limited, m.jnt_range[joints, 1], 2 * np.pi)
    target, rot = np.asarray(pos, dtype=float), down_rotation(yaw)
    jacp, jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))

    def fk(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d.qpos[qadr] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        return d.site_xpos[site].copy(), d.site_xmat[site].reshape(3, 3).copy()

    def residual(q: np.ndarray) -> np.ndarray:
        x, r = fk(q)
        return np.r_[x - target, ROT_WEIGHT * (r[:, 0] - rot[:, 0]), ROT_WEIGHT * (r[:, 2] - rot[:, 2])]

    def jacobian(q: np.ndarray) -> np.ndarray:
        _, r = fk(q)
        mujoco.mj_jacSite(m, d, jacp, jacr, site)
        jr = jacr[:, vadr]
        # d(axis)/dq = omega x axis for each joint's angular velocity column
        dx = np.cross(jr.T, r[:, 0]).T
        dz = np.cross(jr.T, r[:, 2]).T
        return np.vstack([jacp[:, vadr], ROT_WEIGHT * dx, ROT_WEIGHT * dz])

    rng = np.random.default_rng(seed)
    best: IkResult | None = None
    for _ in range(starts):
        q0 = rng.uniform(np.maximum(lo, -np.pi), np.minimum(hi, np.pi))
        sol = least_squares(residual, q0, jac=jacobian, bounds=(lo, hi), xtol=1e-12, ftol=1e-12)
        q = np.where(limited, sol.x, (sol.x + np.pi) % (2 * np.pi) - np.pi)  # free joints wrapped to [-pi, pi)
        x, r = fk(q)
        res = IkResult(
            qpos=q, pos_error_m=float(np.linalg.norm(x - target)),
            axis_error=float(max(np.abs(r[:, 0] - rot[:, 0]).max(), np.abs(r[:, 2] - rot[:, 2]).max())),
            limit_margin_rad=float(np.min(np.minimum(q - lo, hi - q)[limited])) if limited.any() else math.inf,
        )
        if res.pos_error_m > 1e-4 or res.axis_error > 1e-3:
            continue
        if best is None or _better(res, best):
            best = res
    if best is None:
        raise ValueError(f"robot {builder.name}: no posture reaches {target.tolist()} pointing down "
                         f"(yaw {yaw}) from {starts} starts")
    log.info("robot %s: pose %s reached by %s", builder.name, target.tolist(), np.round(best.qpos, 4).tolist())
    return best
