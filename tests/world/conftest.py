"""World test fixtures: which (task, robot) pairs exist, and a cache of specs."""

from __future__ import annotations

import functools

import pytest

from enpire import plugins
from enpire.spec import ExperimentSpec, load_spec

# Robots whose controller and home posture are verified end to end; each runs the tasks its
# task's `requires` allow (jaco: all but peg_insert, which requires enarm_wrist).
VERIFIED_ROBOTS = ("enarm", "jaco")


@functools.cache
def spec_for(task: str, robot: str = "enarm", *extra: str) -> ExperimentSpec:
    return load_spec([f"task={task}", f"robot={robot}", *extra])


def task_robot_pairs() -> list[tuple[str, str]]:
    pairs = []
    for task in plugins.names("tasks"):
        for robot in VERIFIED_ROBOTS:
            try:
                spec_for(task, robot)  # refused when the robot does not meet the task's requires
            except Exception:
                continue
            pairs.append((task, robot))
    return pairs


PAIRS = task_robot_pairs()


@pytest.fixture(params=PAIRS, ids=[f"{t}-{r}" for t, r in PAIRS])
def task_robot(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param
