"""Shared pieces of the rl tests: a short reach spec and a published snapshot 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from enpire.spec import ExperimentSpec, load_spec

FAST = ["task=reach", "policy=rl", "video.enabled=false", "policy.train.demos=0", "policy.train.pretrain_steps=0",
        "policy.train.hidden_sizes=[32,32]", "policy.train.batch_size=32"]


@pytest.fixture(scope="session")
def rl_spec() -> ExperimentSpec:
    return load_spec(FAST)


def prepare(spec: ExperimentSpec, out: Path, recipe: dict | None = None):  # type: ignore[no-untyped-def]
    """A learner job with its snapshot 0 published (what the trainer slot does before the first trial)."""
    from enpire.policy.rl_recipe import resolve_rl_recipe
    from enpire.policy.rl_trainer import RLJob
    from enpire.policy.transitions import TransitionStream

    job = RLJob(spec, resolve_rl_recipe(spec, recipe), out, seed=0, stream=TransitionStream(), device="cpu")
    return job, job.prepare()
