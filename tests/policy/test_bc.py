"""Behaviour cloning on drawer: real demonstrations on a MuJoCo station, real Lightning training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from enpire.policy import demos
from enpire.policy.bc import BCPolicy, build_bc_policy, resolve_recipe, train_bc
from enpire.policy.dataset import Dataset
from enpire.policy.online import dagger, evaluate
from enpire.records import Candidate
from enpire.spec import load_spec

EVAL_SEEDS = range(5000, 5012)  # 12 seeds: a stabler estimate than 6


class RandomPolicy:
    """Random set-points near the hand and random grip: the floor a learned policy must beat."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, obs, feedback=None) -> None:
        pass

    def act(self, obs) -> np.ndarray:
        return np.concatenate([obs["ee_pos"] + self.rng.normal(0.0, 0.03, 3), [0.0, self.rng.uniform()]])


@pytest.fixture(scope="module")
def drawer_bc(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Dataset]:
    spec = load_spec(["task=drawer", "policy=bc"])
    # the tuned demonstrator (demos.DEMONSTRATOR_PARAMS), only verified successes kept
    data, stats = demos.collect(spec, 16, noise=0.01, seed=1)
    assert stats.successes >= 14, f"the tuned scripted demonstrator should almost always succeed: {stats}"
    recipe = resolve_recipe(spec, {"epochs": 20, "online": "none"})
    ckpt, metrics = train_bc(data, recipe, tmp_path_factory.mktemp("bc"), seed=0)
    assert metrics["bc_train_loss"] < 0.5
    return ckpt, data


def test_demonstrations_keep_only_verified_successes() -> None:
    spec = load_spec(["task=drawer"])
    data, stats = demos.collect(spec, 3, seed=3, only_success=True)
    assert data.episodes == stats.kept == stats.successes
    assert data.x.shape[1] == 22 and data.y.shape[1] == 5 and len(data) > 100
    # labels are end-effector deltas: small compared with the workspace
    assert np.abs(data.y[:, :3]).max() < 0.1


def test_bc_beats_random_on_drawer(drawer_bc: tuple[str, Dataset]) -> None:
    ckpt, _ = drawer_bc
    spec = load_spec(["task=drawer", "policy=bc"])
    policy = build_bc_policy(spec, Candidate("bc-test", kind="bc", checkpoint=ckpt))
    bc = evaluate(spec, policy, EVAL_SEEDS)
    rnd = evaluate(spec, RandomPolicy(), EVAL_SEEDS)
    assert rnd.successes == 0
    assert bc.successes >= len(EVAL_SEEDS) // 3, bc  # at least 2 in 6, as before, on twice the seeds
    assert bc.mean_opening > rnd.mean_opening + 0.05, (bc, rnd)


def test_checkpoint_carries_its_normalisation(drawer_bc: tuple[str, Dataset], tmp_path: Path) -> None:
    ckpt, data = drawer_bc
    a, b = BCPolicy.load(ckpt), BCPolicy.load(ckpt)
    x = data.x[:5]
    import torch

    assert torch.allclose(a.model(torch.from_numpy(x)), b.model(torch.from_numpy(x)))
    assert a.keys == data.keys


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    spec = load_spec(["task=drawer", "policy=bc"])
    with pytest.raises(ValueError, match="needs a checkpoint"):
        build_bc_policy(spec, Candidate("x", kind="bc"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_bc_policy(spec, Candidate("x", kind="bc", checkpoint=str(tmp_path / "nope.ckpt")))
    with pytest.raises(ValueError, match="unknown keys"):
        resolve_recipe(spec, {"epochz": 3})


@pytest.mark.slow
def test_dagger_does_not_degrade_bc(drawer_bc: tuple[str, Dataset], tmp_path: Path) -> None:
    ckpt, data = drawer_bc
    spec = load_spec(["task=drawer", "policy=bc"])
    recipe = resolve_recipe(spec, {"epochs": 10, "dagger_rounds": 1, "dagger_episodes": 6})
    seeds = range(7000, 7010)
    before = evaluate(spec, BCPolicy.load(ckpt), seeds)
    final, metrics, agg = dagger(spec, data, recipe, tmp_path, ckpt, seed=0)
    after = evaluate(spec, BCPolicy.load(final), seeds)
    print(f"dagger: BC {before.successes}/10 -> {after.successes}/10; metrics {metrics}")
    assert len(agg) > len(data) and "dagger_round0_learner_success" in metrics
    assert after.success_rate >= before.success_rate, (before, after)
