"""Every registered task with every verified compatible robot (dm_control suite_test style)."""

from __future__ import annotations

import numpy as np
import pytest

from enpire.fleet.stations import make_station
from enpire.records import Candidate, TrialRequest
from enpire.world.station import SimStation
from tests.world.conftest import spec_for


def _trial(st: SimStation, seed: int, params: dict[str, float] | None = None):
    return st.run_trial(TrialRequest(f"t{seed}", 0, seed, Candidate("c", params=params or {})))


def test_conforms_to_spec(task_robot: tuple[str, str]) -> None:
    spec = spec_for(*task_robot)
    st = make_station(spec, 0)
    assert st.reset(0)
    obs = st.observe()
    keys = {k: v.shape for k, v in obs.items()}
    assert {"ee_pos", "ee_yaw", "grip", "joint_pos", "joint_vel"} <= set(keys)
    hold = st._hold.hold_action(st.scene.data)
    assert st.action_size == (5 if spec.policy.action_mode == "cartesian" else spec.robot.dof + 1)
    for k in range(25):
        st.step(hold if spec.policy.action_mode == "cartesian" else np.zeros(st.action_size), k)
        o = st.observe()
        assert {kk: v.shape for kk, v in o.items()} == keys, "observation keys/shapes changed between steps"
        for name, q in spec.task.state_space.items():
            v = st.scene.physics.quantity(name)
            assert q.low <= v <= q.high, f"{name}={v} outside [{q.low}, {q.high}]"
    rec = _trial(st, 1)
    assert set(rec.final_state) == set(spec.task.state_space)


def test_deterministic_for_a_seed(task_robot: tuple[str, str]) -> None:
    spec = spec_for(*task_robot)
    a, b = make_station(spec, 0), make_station(spec, 1)
    ra, rb = _trial(a, 7), _trial(b, 7)
    assert (ra.outcome, ra.steps, ra.clamps) == (rb.outcome, rb.steps, rb.clamps)
    assert ra.final_state == rb.final_state
    assert np.array_equal(a.scene.data.qpos, b.scene.data.qpos)


def test_initial_state_varies_across_seeds(task_robot: tuple[str, str]) -> None:
    st = make_station(spec_for(*task_robot), 0)
    states = []
    for seed in range(3):
        assert st.reset(seed)
        states.append(np.concatenate([st.scene.data.qpos, st.scene.model.body_pos.ravel()]))
    assert not np.allclose(states[0], states[1]) and not np.allclose(states[1], states[2])


@pytest.mark.slow
def test_baseline_succeeds_on_some_seeds_and_fails_on_others(task_robot: tuple[str, str]) -> None:
    st = make_station(spec_for(*task_robot), 0)
    outcomes = [_trial(st, seed).outcome for seed in range(16)]
    assert "success" in outcomes, outcomes
    assert any(o != "success" for o in outcomes), outcomes


@pytest.mark.parametrize("task", ["drawer", "reach"])
def test_default_baseline_is_neither_solved_nor_hopeless(task: str) -> None:
    st = make_station(spec_for(task), 0)
    outcomes = [_trial(st, seed).outcome for seed in range(8)]
    assert "success" in outcomes, outcomes
    assert any(o != "success" for o in outcomes), outcomes
