"""The safety envelope, enforced inside the station every control step.

All enforcement logic lives in this file (its source is part of safety_sha256). The
station routes every arm and gripper command through `Envelope.write`, which is the only
place that writes the robot's entries of `data.ctrl`:

- torque commands are clamped per joint to min(safety.torque_limit_nm, actuator range)
  (counted as clamps, not breaches); gripper commands are clipped to their ctrlrange;
- a non-finite command (NaN/Inf) is a breach (`nonfinite_command`) and is never written;
- `check` after each control step: non-finite state, joint position within
  joint_position_margin_rad of a hard range (limited joints only), joint speed, the
  end-effector workspace box, and the largest normal force of contacts involving a robot
  geom. The first breach found is returned as a SafetyEvent;
- `stop` brings the robot to a safe stop: gravity compensation plus joint damping, clamped
  like any command, gripper unchanged.

The limits are copied into private read-only arrays at construction; nothing a policy
returns reaches this object except through `write`, which cannot widen or disable them.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from enpire.spec.model import SafetySpec
from enpire.world.api import SafetyEvent

STOP_DAMPING = 2.0  # N·m·s/rad, joint damping of the safe stop


def _all_finite(a: np.ndarray) -> bool:
    """Exact and cheap: NaN and Inf propagate through a sum, so a finite sum means finite entries;
    only a non-finite sum (NaN/Inf inside, or an overflow of huge finite values) needs the full test.
    Plain floats: for the few dozen entries of a robot cell this beats any numpy reduction."""
    values = a.ravel().tolist()
    return math.isfinite(sum(values)) or all(map(math.isfinite, values))


def _slice_if_contiguous(a: np.ndarray) -> slice | np.ndarray:
    """Contiguous ascending indices as a slice: reading state through it is a view, not a gather."""
    if a.size and np.array_equal(a, np.arange(a[0], a[0] + a.size)):
        return slice(int(a[0]), int(a[0]) + a.size)
    return a


def _frozen(a: np.ndarray, dtype: type = float) -> np.ndarray:
    a = np.array(a, dtype=dtype)
    a.flags.writeable = False
    return a


class Envelope:
    """Clamps commands and detects breaches for one robot in one scene."""

    __slots__ = (
        "_act",
        "_act_sel",
        "_box_hi",
        "_box_hi_f",
        "_box_lo",
        "_box_lo_f",
        "_dof",
        "_ee",
        "_force",
        "_force6",
        "_gact",
        "_gact_sel",
        "_geom_mask",
        "_ghi",
        "_glo",
        "_jhi",
        "_jhi_all",
        "_jlo",
        "_jlo_all",
        "_jmask",
        "_ntau",
        "_qadr",
        "_tau",
        "_vel",
    )

    def __init__(self, safety: SafetySpec, model: mujoco.MjModel, robot: object) -> None:
        r = robot
        ctrl = np.abs(np.asarray(r.ctrl_range, dtype=float)).min(axis=1)  # symmetric actuator range
        self._tau = _frozen(np.minimum(float(safety.torque_limit_nm), ctrl))
        self._ntau = _frozen(-self._tau)
        self._act = np.array(r.arm_act, dtype=int)
        self._gact = np.array(r.grip_act, dtype=int)
        self._act_sel = _slice_if_contiguous(self._act)  # where write() puts the commands
        self._gact_sel = _slice_if_contiguous(self._gact)
        self._glo = _frozen(np.asarray(r.grip_ctrl_range)[:, 0])
        self._ghi = _frozen(np.asarray(r.grip_ctrl_range)[:, 1])
        qadr = np.array(r.qpos_adr, dtype=int)
        self._dof = _slice_if_contiguous(np.array(r.dof_adr, dtype=int))
        joints = [int(np.flatnonzero(model.jnt_qposadr == a)[0]) for a in qadr]
        self._qadr = _slice_if_contiguous(qadr)
        self._jmask = _frozen(model.jnt_limited[joints], bool)
        margin = float(safety.joint_position_margin_rad)
        self._jlo = _frozen(np.asarray(r.jnt_range)[:, 0] + margin)
        self._jhi = _frozen(np.asarray(r.jnt_range)[:, 1] - margin)
        # as floats for the per-step test; unlimited joints never breach
        self._jlo_all = tuple(float(v) for v in np.where(self._jmask, self._jlo, -np.inf))
        self._jhi_all = tuple(float(v) for v in np.where(self._jmask, self._jhi, np.inf))
        self._vel = float(safety.joint_velocity_limit_rad_s)
        self._box_lo = _frozen(safety.workspace.low)
        self._box_hi = _frozen(safety.workspace.high)
        self._box_lo_f = tuple(float(v) for v in self._box_lo)
        self._box_hi_f = tuple(float(v) for v in self._box_hi)
        self._force = float(safety.contact_force_limit_n)
        self._geom_mask = _frozen(r.geom_mask, bool)
        self._ee = int(r.ee_site)
        self._force6 = np.zeros(6)

    @property
    def torque_limits(self) -> np.ndarray:
        """Per-joint torque caps, N·m (a copy)."""
        return np.array(self._tau)

    def ctrl_bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(arm actuator ids, arm caps, gripper actuator ids, gripper (low, high) stacked) for audits."""
        return self._act.copy(), np.array(self._tau), self._gact.copy(), np.stack([self._glo, self._ghi], axis=1)

    def write(self, data: mujoco.MjData, tau: np.ndarray, grip: np.ndarray,
              step: int) -> tuple[int, SafetyEvent | None]:
        """Clamp and write one command. Returns (clamped joints, breach or None); a breach writes nothing."""
        tau = np.asarray(tau, dtype=float)
        grip = np.asarray(grip, dtype=float)
        if tau.shape != self._tau.shape or not (_all_finite(tau) and _all_finite(grip)):
            bad = tau[~np.isfinite(tau)] if tau.shape == self._tau.shape else tau
            value = float(bad.ravel()[0]) if bad.size else None
            return 0, SafetyEvent("nonfinite_command", step, value, None, "NaN/Inf or malformed torque command")
        clipped = np.minimum(np.maximum(tau, self._ntau), self._tau)
        clamps = int(np.count_nonzero(clipped != tau))
        ctrl = data.ctrl
        ctrl[self._act_sel] = clipped
        ctrl[self._gact_sel] = np.minimum(np.maximum(grip, self._glo), self._ghi)
        return clamps, None

    def check(self, model: mujoco.MjModel, data: mujoco.MjData, step: int) -> SafetyEvent | None:
        """The first breach of the state after a control step, or None.

        Runs every control step, so each check has a cheap exact test first and only builds the
        event when it fails. The contact check is bounded first: a contact's normal force is at most
        the sum of |efc_force| over all constraint rows, so the per-contact forces are computed only
        when that sum exceeds the limit.
        """
        qpos, qvel = data.qpos, data.qvel
        if not (_all_finite(qpos) and _all_finite(qvel)):
            return SafetyEvent("nonfinite_state", step, None, None, "NaN/Inf in qpos/qvel")
        q, qd = qpos[self._qadr], qvel[self._dof]
        if any(v < lo or v > hi for v, lo, hi in zip(q.tolist(), self._jlo_all, self._jhi_all)):
            low, high = (q < self._jlo) & self._jmask, (q > self._jhi) & self._jmask
            j = int(np.flatnonzero(low | high)[0])
            lim = float(self._jlo[j] if low[j] else self._jhi[j])
            return SafetyEvent("joint_position", step, float(q[j]), lim, f"arm joint {j + 1}")
        vel = self._vel
        if any(v > vel or v < -vel for v in qd.tolist()):
            speed = np.abs(qd)
            j = int(np.argmax(speed))
            return SafetyEvent("joint_velocity", step, float(qd[j]), self._vel, f"arm joint {j + 1}")
        x0, x1, x2 = data.site_xpos[self._ee].tolist()
        lo, hi = self._box_lo_f, self._box_hi_f
        if not (lo[0] <= x0 <= hi[0] and lo[1] <= x1 <= hi[1] and lo[2] <= x2 <= hi[2]):
            x = data.site_xpos[self._ee]
            out = (x < self._box_lo) | (x > self._box_hi)
            a = int(np.flatnonzero(out)[0])
            lim = float(self._box_lo[a] if x[a] < self._box_lo[a] else self._box_hi[a])
            return SafetyEvent("workspace", step, float(x[a]), lim, f"end-effector {'xyz'[a]}")
        if data.ncon and float(np.abs(data.efc_force).sum()) > self._force:
            geoms = data.contact.geom
            hits = np.flatnonzero(self._geom_mask[geoms[:, 0]] | self._geom_mask[geoms[:, 1]])
            worst = 0.0
            for i in hits:
                mujoco.mj_contactForce(model, data, int(i), self._force6)
                worst = max(worst, abs(float(self._force6[0])))
            if worst > self._force:
                return SafetyEvent("contact_force", step, worst, self._force, "robot contact")
        return None

    def stop(self, data: mujoco.MjData) -> None:
        """Safe stop: gravity compensation and damping, clamped; the gripper command stays as it was."""
        tau = data.qfrc_bias[self._dof] - STOP_DAMPING * data.qvel[self._dof]
        data.ctrl[self._act] = np.clip(np.nan_to_num(tau, nan=0.0, posinf=0.0, neginf=0.0), -self._tau, self._tau)
