"""The station's per-control-step fast paths compute exactly what the plain forms compute.

Quantities are read once per control step and never go stale; the controller's float arithmetic
gives the numpy formula's torques bit for bit; the envelope clamps and counts as the numpy form
does; its contact-force pre-test never skips a contact that is over the limit.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from enpire.fleet.stations import make_station
from enpire.records import Candidate, TrialRequest
from enpire.world.controller import rotation_error
from enpire.world.scene import index_or_slice
from tests.world.conftest import spec_for

TASKS = ["drawer", "reach", "lift", "push_t", "peg_insert"]


def _reference_torque(ctl, data: mujoco.MjData, action: np.ndarray) -> np.ndarray:
    """The controller's cartesian law in its plain numpy form (as it was before the float fast path)."""
    q, qd = data.qpos[ctl.robot.qpos_adr], data.qvel[ctl.robot.dof_adr]
    full = np.zeros((6, ctl.model.nv))
    mujoco.mj_jacSite(ctl.model, data, full[:3], full[3:], ctl.robot.ee_site)
    jac = full[:, index_or_slice(ctl.robot.dof_adr)]  # a strided view, as always (BLAS rounds by layout)
    x = data.site_xpos[ctl.robot.ee_site].tolist()
    rx, ry, rz = rotation_error(data.site_xmat[ctl.robot.ee_site].tolist(), float(action[3]))
    v0, v1, v2, w0, w1, w2 = np.dot(jac, qd).tolist()
    a0, a1, a2 = action[:3].tolist()
    wrench = np.array((ctl.kp * (a0 - x[0]) - ctl.dp * v0, ctl.kp * (a1 - x[1]) - ctl.dp * v1,
                       ctl.kp * (a2 - x[2]) - ctl.dp * v2, ctl.kr * rx - ctl.dr * w0, ctl.kr * ry - ctl.dr * w1,
                       ctl.kr * rz - ctl.dr * w2))
    tau = np.dot(wrench, jac)
    tau += ctl.kn * ctl.home
    tau -= ctl.kn * q
    tau -= ctl.dn * qd
    if ctl.gravity:
        tau += data.qfrc_bias[ctl.robot.dof_adr]
    return tau


@pytest.mark.parametrize("robot", ["enarm", "jaco"])
def test_cartesian_torques_are_the_numpy_formula_bit_for_bit(robot: str) -> None:
    st = make_station(spec_for("drawer", robot), 0)
    rng = np.random.default_rng(0)
    for seed in range(3):
        assert st.reset(seed)
        d = st.scene.data
        for k in range(40):
            x = st._ee_xpos
            action = np.r_[x + rng.normal(0, 0.05, 3), rng.choice([0.0, -0.0, rng.uniform(-1, 1)]), rng.random()]
            tau, _ = st._ctl.command(d, action)
            assert np.array_equal(np.asarray(tau), _reference_torque(st._ctl, d, action)), (seed, k)
            st.step(action, k)


def test_quantities_are_read_once_per_step_and_never_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    st = make_station(spec_for("drawer"), 0)
    physics = st.scene.physics
    calls = {"drawer_opening": 0}
    plain = type(physics).drawer_opening

    def counted(self) -> float:
        calls["drawer_opening"] += 1
        return plain(self)

    monkeypatch.setattr(type(physics), "drawer_opening", counted)
    physics._queries.clear()
    mismatches = []

    def hook(model, data) -> None:  # runs inside step(), after the physics: fresh values only
        if physics.quantity("drawer_opening") != plain(physics):
            mismatches.append(data.time)

    st._step_hook = hook
    rec = st.run_trial(TrialRequest("t", 0, 3, Candidate("c")))
    assert rec.steps > 50 and not mismatches
    # one computation per control step (verifier, shaping reward and observation share it), plus the
    # first observation of each attempt and the final state
    assert calls["drawer_opening"] <= rec.steps + 2 * rec.attempts + 2
    assert st.reset(4)
    assert physics.quantity("drawer_opening") == plain(physics)  # a reset forgets the old values


def _reference_write(env, tau: np.ndarray, grip: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    cap = env.torque_limits
    clipped = np.minimum(np.maximum(tau, -cap), cap)
    *_, grange = env.ctrl_bounds()
    return clipped, np.minimum(np.maximum(grip, grange[:, 0]), grange[:, 1]), int(np.count_nonzero(clipped != tau))


def test_envelope_write_clamps_and_counts_as_the_numpy_form() -> None:
    st = make_station(spec_for("drawer"), 0)
    env, d = st._envelope, st.scene.data
    act, _, gact, _ = env.ctrl_bounds()
    rng = np.random.default_rng(1)
    for k in range(500):
        tau = rng.normal(0, 40, 6) * rng.choice([1e-3, 1.0, 1e4])
        if k % 7 == 0:
            tau[rng.integers(6)] = env.torque_limits[0]  # exactly at a cap: not a clamp
        grip = rng.uniform(-0.1, 0.1, len(gact))
        for form in (tau, tau.tolist()):
            clamps, event = env.write(d, form, grip, k)
            want_tau, want_grip, want_clamps = _reference_write(env, tau, grip)
            assert event is None and clamps == want_clamps
            assert np.array_equal(d.ctrl[act], want_tau) and np.array_equal(d.ctrl[gact], want_grip)
    before = d.ctrl.copy()
    for bad in (np.r_[tau[:5], np.nan], [math.inf] * 6, np.zeros(5), [0.0] * 5):
        _, event = env.write(d, bad, grip, 0)
        assert event is not None and event.kind == "nonfinite_command"
    _, event = env.write(d, tau, np.full(len(gact), np.nan), 0)
    assert event is not None and event.kind == "nonfinite_command"
    assert np.array_equal(d.ctrl, before), "a refused command writes nothing"


@pytest.mark.parametrize("task", ["lift", "push_t", "peg_insert", "drawer"])
def test_contact_pre_test_bounds_every_robot_contact(task: str) -> None:
    """No contact's normal force exceeds sqrt(MAX_CONTACT_ROWS * sum(efc_force^2)) (the pre-test) nor
    sum(|efc_force|), over contact-rich trials: the envelope only skips contacts that are under the limit."""
    from enpire.world.envelope import MAX_CONTACT_ROWS

    st = make_station(spec_for(task), 0)
    f6 = np.zeros(6)
    checked = [0]

    def hook(model, data) -> None:
        if not data.ncon:
            return
        efc = data.efc_force
        bound2, bound1 = MAX_CONTACT_ROWS * float(np.dot(efc, efc)), float(np.abs(efc).sum())
        for i in range(data.ncon):
            mujoco.mj_contactForce(model, data, i, f6)
            n = abs(float(f6[0]))
            assert n * n <= bound2 * (1 + 1e-12) and n <= bound1 * (1 + 1e-12)
            checked[0] += 1

    st._step_hook = hook
    for seed in range(2):
        st.run_trial(TrialRequest(f"t{seed}", 0, seed, Candidate("c")))
    assert checked[0] > 100


@pytest.mark.parametrize("task", TASKS)
def test_observation_is_fresh_copies_every_step(task: str) -> None:
    st = make_station(spec_for(task), 0)
    assert st.reset(0)
    first = st.observe()
    for v in first.values():
        v[...] = 1e9  # a policy scribbling on its observation changes nothing in the station
    second = st.observe()
    assert all(np.all(v != 1e9) for v in second.values())
    assert np.array_equal(second["ee_pos"], st.scene.data.site_xpos[st.scene.robot.ee_site])
