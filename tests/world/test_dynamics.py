"""`dynamics:` a sim-to-sim gap on real MuJoCo stations (enpire.world.dynamics): friction and the task's masses
scaled in the model, actuation delay, sensor noise on the task's observation; the verifier reads the true state."""

from __future__ import annotations

import numpy as np
import pytest

from enpire.fleet.scheduler import trial_seed
from enpire.fleet.stations import make_station
from enpire.records import Candidate, TrialRequest
from enpire.spec import load_spec
from enpire.world.dynamics import ActionDelay, task_bodies


def station(*overrides: str):  # noqa: ANN201 - a SimStation
    return make_station(load_spec(["task=drawer", "video.enabled=false", *overrides]), 0)


def test_friction_and_the_task_masses_are_scaled_and_the_robot_is_not() -> None:
    nominal, perturbed = station(), station("dynamics=perturbed")  # friction 0.7, mass 1.5
    try:
        m0, m1 = nominal.scene.model, perturbed.scene.model
        assert np.allclose(m1.geom_friction[:, 0], 0.7 * m0.geom_friction[:, 0])
        bodies = task_bodies(m0, nominal.scene.robot)
        assert len(bodies)  # the drawer's bodies
        assert np.allclose(m1.body_mass[bodies], 1.5 * m0.body_mass[bodies])
        robot = sorted(set(int(b) for b in m0.geom_bodyid[nominal.scene.robot.geom_mask]))
        assert np.allclose(m1.body_mass[robot], m0.body_mass[robot])
    finally:
        nominal.close()
        perturbed.close()


def test_the_robot_applies_the_action_of_latency_steps_ago() -> None:
    delay = ActionDelay(2)
    delay.begin()
    got = [float(delay(np.array([float(t)]))[0]) for t in range(5)]
    assert got == [0.0, 0.0, 0.0, 1.0, 2.0]  # the first action held, then two steps late
    st = station("dynamics.latency_steps=2")
    seen: list[float] = []
    command = st._command
    st._command = lambda d, a: (seen.append(float(a[0])), command(d, a))[1]  # what the controller is handed
    try:
        assert st.reset(7)
        for t in range(4):
            st.step(np.array([0.1 * t, 0.0, 0.3, 0.0, 0.0]), t)
        assert seen == pytest.approx([0.0, 0.0, 0.0, 0.1])
    finally:
        st.close()


def test_sensor_noise_is_on_the_task_observation_only_and_repeats_with_the_seed() -> None:
    nominal, noisy = station(), station("dynamics.obs_noise=0.01")
    try:
        draws = []
        for _ in range(2):
            assert nominal.reset(11) and noisy.reset(11)
            clean, seen = nominal.observe(), noisy.observe()
            task_keys = set(nominal._task_observe(nominal._physics))
            assert np.allclose(seen["ee_pos"], clean["ee_pos"]) and np.allclose(seen["joint_pos"], clean["joint_pos"])
            diffs = np.concatenate([np.ravel(seen[k] - clean[k]) for k in sorted(task_keys)])
            assert 0.001 < np.abs(diffs).max() < 0.06  # noise of std 0.01 on every task value
            draws.append(diffs)
            # the verifier's quantities are the true state
            assert noisy.scene.physics.quantity("drawer_opening") == pytest.approx(
                nominal.scene.physics.quantity("drawer_opening"))
        assert np.allclose(draws[0], draws[1])  # the same trial seed, the same noise
    finally:
        nominal.close()
        noisy.close()


def test_the_same_trial_differs_under_perturbed_dynamics() -> None:
    spec = load_spec(["task=drawer"])
    params = {p.name: p.default for p in spec.policy.params}
    finals = []
    for overrides in ((), ("dynamics=perturbed",)):
        st = station(*overrides)
        try:
            rec = st.run_trial(TrialRequest("t0", 0, trial_seed(0, 0, 0), Candidate("c", "params", params), False,
                                            "/tmp"))
            finals.append((rec.steps, rec.final_state["drawer_opening"]))
        finally:
            st.close()
    assert finals[0] != finals[1]
