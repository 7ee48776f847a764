"""The safety envelope, enforced inside the station every control step.

All enforcement logic lives in this file (its source is part of safety_sha256). The
station routes every arm and gripper command through `Envelope.clamp` before its hardware
adapter applies it (enpire.hardware: controller -> clamp -> adapter.send_command); `write`
(clamp, then write `data.ctrl`) drives the simulator directly, for the verified reset:

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
returns reaches this object except through `clamp`, which cannot widen or disable them.

Both `clamp` and `check` run every control step, so they work on plain floats (one `tolist` per
array) with a cheap exact pre-test before each slow path, and build nothing unless a limit is hit.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from enpire.records import SafetyEvent
from enpire.spec.model import SafetySpec

STOP_DAMPING = 2.0  # N·m·s/rad, joint damping of the safe stop
# The most constraint rows one contact has (a pyramidal cone of condim 6 has 2 * (6 - 1)); its normal
# force is the sum of those rows (pyramidal) or the first of them (elliptic), so by Cauchy-Schwarz no
# contact's normal force exceeds sqrt(MAX_CONTACT_ROWS * sum(efc_force ** 2)).
MAX_CONTACT_ROWS = 10


def _slice_if_contiguous(a: np.ndarray) -> slice | np.ndarray:
    """Contiguous ascending indices as a slice: reading state through it is a view, not a gather."""
    if a.size and np.array_equal(a, np.arange(a[0], a[0] + a.size)):
        return slice(int(a[0]), int(a[0]) + a.size)
    return a


def _bounds(sel: slice | np.ndarray) -> tuple[int, int] | None:
    """(start, stop) of a slice, for slicing a plain list; None for an index array."""
    return (sel.start, sel.stop) if isinstance(sel, slice) else None


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
        "_ctrl_sel",
        "_data",
        "_dof",
        "_dof_f",
        "_ee",
        "_force",
        "_force2",
        "_force6",
        "_gact",
        "_gact_sel",
        "_gclip",
        "_geom_mask",
        "_ghi",
        "_gkey",
        "_glo",
        "_jhi",
        "_jhi_all",
        "_jlo",
        "_jlo_all",
        "_jmask",
        "_limited",
        "_ntau",
        "_qadr",
        "_qadr_f",
        "_qpos",
        "_qvel",
        "_tau",
        "_tau_f",
        "_vel",
        "_xpos",
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
        self._force2 = self._force * self._force / MAX_CONTACT_ROWS * (1.0 - 1e-9)  # margin for rounding
        self._geom_mask = _frozen(r.geom_mask, bool)
        self._ee = int(r.ee_site)
        self._force6 = np.zeros(6)
        # plain-float forms for the per-step paths
        self._tau_f = tuple(float(v) for v in self._tau)
        self._limited = tuple((j, self._jlo_all[j], self._jhi_all[j]) for j in range(len(joints)) if self._jmask[j])
        self._qadr_f = _bounds(self._qadr)
        self._dof_f = _bounds(self._dof)
        # arm and gripper actuators side by side: one write of both
        a, g = self._act_sel, self._gact_sel
        self._ctrl_sel = (slice(a.start, g.stop) if isinstance(a, slice) and isinstance(g, slice) and a.stop == g.start
                          else None)
        self._gkey: list[float] | None = None
        self._gclip: list[float] = []
        self._data: mujoco.MjData | None = None

    @property
    def torque_limits(self) -> np.ndarray:
        """Per-joint torque caps, N·m (a copy)."""
        return np.array(self._tau)

    def ctrl_bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(arm actuator ids, arm caps, gripper actuator ids, gripper (low, high) stacked) for audits."""
        return self._act.copy(), np.array(self._tau), self._gact.copy(), np.stack([self._glo, self._ghi], axis=1)

    def _bind(self, data: mujoco.MjData) -> None:
        """Views of `data` read every control step (MjData's arrays never move, so a view stays current)."""
        self._data = data
        self._qpos, self._qvel, self._xpos = data.qpos, data.qvel, data.site_xpos[self._ee]

    def clamp(self, tau: np.ndarray | list[float], grip: np.ndarray,
              step: int) -> tuple[list[float] | None, int, SafetyEvent | None]:
        """Clamp one command: (arm torques then gripper controls as one list of floats, clamped joints, None),
        or (None, 0, breach) for a command that must not be applied at all."""
        if type(tau) is list and len(tau) == len(self._tau_f):
            values = tau  # the controller's own torques, already plain floats
        else:
            arr = np.asarray(tau, dtype=float)
            if arr.shape != self._tau.shape:
                return None, 0, self._nonfinite(arr, step)
            values = arr.tolist()
        grip = np.asarray(grip, dtype=float)
        gvalues = grip.ravel().tolist()
        if not (math.isfinite(sum(values)) or all(map(math.isfinite, values))) or not (
                math.isfinite(sum(gvalues)) or all(map(math.isfinite, gvalues))):
            return None, 0, self._nonfinite(np.array(values), step)
        clipped, clamps = [], 0  # = np.minimum(np.maximum(tau, -cap), cap), counting the entries it changed
        for v, cap in zip(values, self._tau_f):
            if v > cap:
                v, clamps = cap, clamps + 1
            elif v < -cap:
                v, clamps = -cap, clamps + 1
            clipped.append(v)
        if gvalues != self._gkey:  # the station hands the same grip command for many steps: clip it once
            self._gclip = np.minimum(np.maximum(grip, self._glo), self._ghi).tolist()
            self._gkey = gvalues
        return clipped + self._gclip, clamps, None

    def write(self, data: mujoco.MjData, tau: np.ndarray | list[float], grip: np.ndarray,
              step: int) -> tuple[int, SafetyEvent | None]:
        """Clamp one command and write it to the simulator's `data.ctrl` (the verified reset drives the model
        directly). Returns (clamped joints, breach or None); a breach writes nothing."""
        command, clamps, event = self.clamp(tau, grip, step)
        if command is None:
            return 0, event
        ctrl = data.ctrl
        if self._ctrl_sel is not None:
            ctrl[self._ctrl_sel] = command
        else:
            n = len(self._tau_f)
            ctrl[self._act_sel] = command[:n]
            ctrl[self._gact_sel] = command[n:]
        return clamps, None

    def _nonfinite(self, tau: np.ndarray, step: int) -> SafetyEvent:
        bad = tau[~np.isfinite(tau)] if tau.shape == self._tau.shape else tau
        value = float(bad.ravel()[0]) if bad.size else None
        return SafetyEvent("nonfinite_command", step, value, None, "NaN/Inf or malformed torque command")

    def check(self, model: mujoco.MjModel, data: mujoco.MjData, step: int) -> SafetyEvent | None:
        """The first breach of the state after a control step, or None.

        Runs every control step, so each check has a cheap exact test first and only builds the
        event when it fails. The contact check is bounded first: no contact's normal force exceeds
        sqrt(MAX_CONTACT_ROWS * sum(efc_force ** 2)) nor the sum of |efc_force| over all constraint
        rows, so the per-contact forces are computed only when both bounds exceed the limit.
        """
        if data is not self._data:
            self._bind(data)
        qp, qv = self._qpos.tolist(), self._qvel.tolist()
        if not ((math.isfinite(sum(qp)) or all(map(math.isfinite, qp))) and
                (math.isfinite(sum(qv)) or all(map(math.isfinite, qv)))):
            return SafetyEvent("nonfinite_state", step, None, None, "NaN/Inf in qpos/qvel")
        b = self._qadr_f
        q = qp[b[0]:b[1]] if b is not None else [qp[i] for i in self._qadr]
        for j, lo, hi in self._limited:
            if q[j] < lo or q[j] > hi:
                return self._joint_event(np.array(q), step)
        b, vel = self._dof_f, self._vel
        qd = qv[b[0]:b[1]] if b is not None else [qv[i] for i in self._dof]
        if max(qd) > vel or min(qd) < -vel:
            speed = np.abs(np.array(qd))
            j = int(np.argmax(speed))
            return SafetyEvent("joint_velocity", step, float(qd[j]), self._vel, f"arm joint {j + 1}")
        x0, x1, x2 = self._xpos.tolist()
        lo, hi = self._box_lo_f, self._box_hi_f
        if not (lo[0] <= x0 <= hi[0] and lo[1] <= x1 <= hi[1] and lo[2] <= x2 <= hi[2]):
            x = data.site_xpos[self._ee]
            out = (x < self._box_lo) | (x > self._box_hi)
            a = int(np.flatnonzero(out)[0])
            lim = float(self._box_lo[a] if x[a] < self._box_lo[a] else self._box_hi[a])
            return SafetyEvent("workspace", step, float(x[a]), lim, f"end-effector {'xyz'[a]}")
        if data.ncon:
            efc = data.efc_force
            if float(np.dot(efc, efc)) > self._force2 and float(np.abs(efc).sum()) > self._force:
                return self._contact_event(model, data, step)
        return None

    def _joint_event(self, q: np.ndarray, step: int) -> SafetyEvent:
        low, high = (q < self._jlo) & self._jmask, (q > self._jhi) & self._jmask
        j = int(np.flatnonzero(low | high)[0])
        lim = float(self._jlo[j] if low[j] else self._jhi[j])
        return SafetyEvent("joint_position", step, float(q[j]), lim, f"arm joint {j + 1}")

    def _contact_event(self, model: mujoco.MjModel, data: mujoco.MjData, step: int) -> SafetyEvent | None:
        """The exact test: the largest normal force of the contacts involving a robot geom."""
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
