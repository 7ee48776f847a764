"""World test fixtures: which (task, robot) pairs exist, and a cache of specs."""

from __future__ import annotations

import functools

import pytest

from enpire.spec import ExperimentSpec, load_spec
from enpire.world.tasks.base import load_tasks

# Robots whose controller and home posture are verified end to end; each runs the tasks its
# conf/robot/<name>.yaml lists (jaco: all but peg_insert, whose weld names enarm's wrist).
VERIFIED_ROBOTS = ("enarm", "jaco")


@functools.cache
def spec_for(task: str, robot: str = "enarm", *extra: str) -> ExperimentSpec:
    return load_spec([f"task={task}", f"robot={robot}", *extra])


def task_robot_pairs() -> list[tuple[str, str]]:
    pairs = []
    for task in sorted(load_tasks()):
        for robot in VERIFIED_ROBOTS:
            try:
                spec = spec_for(task, robot)
            except Exception:
                continue
            if task in spec.robot.tasks:
                pairs.append((task, robot))
    return pairs


PAIRS = task_robot_pairs()


@pytest.fixture(params=PAIRS, ids=[f"{t}-{r}" for t, r in PAIRS])
def task_robot(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param
