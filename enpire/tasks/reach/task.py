"""reach: bring the tool centre point to a floating target and hold it still. MJCF: reach.xml."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from enpire.world.task import Task, TaskPhysics, dist3


class ReachPhysics(TaskPhysics):
    """Named state queries of the reach scene."""

    def bind(self) -> None:
        self._target = self.site_pos("target")

    def ee_to_target(self) -> float:
        return min(dist3(self.ee_pos(), self._target), 2.0)

    def ee_speed(self) -> float:
        return min(self.ee_speed_now(), 10.0)


class Reach(Task):
    name = "reach"
    xml = "reach.xml"
    physics_class = ReachPhysics

    def initialize(self, physics: TaskPhysics, init: Mapping[str, float], rng: np.random.Generator) -> None:
        physics.model.body_pos[physics.body_id("target")] = [init["target_x"], init["target_y"], init["target_z"]]

    def observe(self, physics: TaskPhysics) -> dict[str, np.ndarray]:
        return {"target_pos": physics.site_pos("target").copy()}

    def shaping_reward(self, physics: TaskPhysics) -> float:
        q = physics.quantity
        return -q("ee_to_target") - 0.1 * q("ee_speed")

    def reset_problems(self, physics: TaskPhysics, init: Mapping[str, float]) -> list[str]:
        want = np.array([init["target_x"], init["target_y"], init["target_z"]])
        got = physics.site_pos("target")
        return [] if np.allclose(got, want, atol=1e-6) else [f"target at {got} instead of {want}"]
