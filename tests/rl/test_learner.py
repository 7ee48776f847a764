"""The learner: RLPD's symmetric sampling, its checkpoint round-trips, and transitions built from a recorded trial."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from enpire.fleet.stations import make_station
from enpire.policy.rl import RLPolicy, base_policy, latest_snapshot
from enpire.policy.rl_learner import DemoMixBuffer, Learner
from enpire.policy.rl_recipe import resolve_rl_recipe
from enpire.policy.rl_trainer import observation_size
from enpire.policy.transitions import Transitions, from_trajectory
from enpire.records import Candidate, TrialRequest
from enpire.spec import ExperimentSpec


def random_transitions(n: int, dim: int, seed: int, reward: float) -> Transitions:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, dim)).astype(np.float32)
    return Transitions(obs, rng.uniform(-1, 1, (n, 5)).astype(np.float32), np.full(n, reward, np.float32),
                       obs.copy(), np.zeros(n, np.float32))


def small_recipe(**extra) -> dict:  # type: ignore[no-untyped-def]
    return resolve_rl_recipe(None, {"hidden_sizes": [32, 32], "batch_size": 64, **extra})


def test_half_of_every_batch_comes_from_the_demonstrations() -> None:
    learner = Learner(6, small_recipe(), seed=0, device="cpu")
    learner.add(random_transitions(200, 6, 0, reward=1.0), demo=True)
    buffer: DemoMixBuffer = learner.buffer
    assert buffer.sample(64).rewards.numel() == 64  # no online data yet: the whole batch from the demos
    learner.add(random_transitions(200, 6, 1, reward=-1.0))
    rewards = buffer.sample(64).rewards.ravel()
    assert int((rewards > 0).sum()) == 32 and int((rewards < 0).sum()) == 32


def test_the_learners_checkpoint_round_trips(tmp_path: Path) -> None:
    learner = Learner(6, small_recipe(), seed=3, device="cpu")
    learner.add(random_transitions(300, 6, 0, reward=0.5), demo=True)
    learner.update(20)
    path = learner.save(tmp_path / "rl.zip")
    again = Learner(6, small_recipe(), seed=3, device="cpu", init_from=path)
    x = np.random.default_rng(5).normal(size=(8, 6)).astype(np.float32)
    np.testing.assert_array_equal(learner.predict(x), again.predict(x))
    a = torch.from_numpy(np.random.default_rng(6).uniform(-1, 1, (8, 5)).astype(np.float32))
    with torch.no_grad():
        obs = torch.from_numpy(x)
        for q_old, q_new in zip(learner.model.critic(obs, a), again.model.critic(obs, a)):
            torch.testing.assert_close(q_old, q_new)
        torch.testing.assert_close(learner.model.log_ent_coef, again.model.log_ent_coef)
    again.add(random_transitions(300, 6, 1, reward=0.5))
    assert again.update(5) > 0 and again.updates == 5  # the warm-started learner keeps training


def test_a_published_snapshot_acts_as_the_learner(tmp_path: Path) -> None:
    learner = Learner(6, small_recipe(explore=False, residual=False), seed=1, device="cpu")
    learner.add(random_transitions(200, 6, 0, reward=0.5), demo=True)
    learner.update(10)
    learner.publish(tmp_path)
    snap = RLPolicy.__new__(RLPolicy)  # only the network part: the policy's load path
    from enpire.policy.rl import _load

    snap.model = _load(str(latest_snapshot(tmp_path)[1]))  # type: ignore[index]
    x = np.random.default_rng(2).normal(size=(4, 6)).astype(np.float32)
    with torch.no_grad():
        mean, _, _ = snap.model.actor.get_action_dist_params(torch.from_numpy(x))
    np.testing.assert_allclose(np.tanh(mean.numpy()), learner.predict(x), atol=1e-6)


def test_transitions_of_a_recorded_trial_carry_its_reward_terms(rl_spec: ExperimentSpec, tmp_path: Path) -> None:
    station = make_station(rl_spec, 0)
    try:
        request = TrialRequest("s", 0, 4, Candidate("s"), record_trajectory=True, out_dir=str(tmp_path))
        record = station.run_trial(request, policy=base_policy(rl_spec))
    finally:
        station.close()
    assert record.outcome == "success" and record.trajectory
    recipe = resolve_rl_recipe(rl_spec, {"reward": {"shaping": 1.0, "success": 10.0}})
    data = from_trajectory(record.trajectory, record, recipe, lambda: base_policy(rl_spec))
    assert len(data) == record.steps
    np.testing.assert_allclose(data.action, 0.0, atol=1e-6)  # the baseline's own commands: a zero residual
    assert data.done.sum() == 1 and data.done[-1] == 1.0  # the verifier passed: the episode ends on its last step
    shaping = np.load(record.trajectory)["reward"]
    np.testing.assert_allclose(data.reward[:-1], shaping[:-1], rtol=1e-5)
    assert abs(data.reward[-1] - (shaping[-1] + 10.0)) < 1e-4  # the verifier's sparse success
    assert data.obs.shape[1] == observation_size(rl_spec, residual=True)  # what the learner was built for
