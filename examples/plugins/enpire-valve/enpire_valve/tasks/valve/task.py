"""valve: push the lever of a quarter-turn valve round until the valve is open.

Everything the verifier reads is declared in conf/task/valve.yaml (`state_space.*.from`): the
hinge angle, the lever tip's distance to the gripper. This module only does what yaml cannot say:
the hinge's friction from `task.options` (checked against schemas/task.valve.schema.json) and
the observation the scripted baseline uses.
"""

from __future__ import annotations

from collections.abc import Mapping

import mujoco
import numpy as np

from enpire.world.task import Task, TaskPhysics


class Valve(Task):
    name = "valve"  # = conf/task/valve.yaml: name
    xml = "valve.xml"  # beside this module

    def initialize(self, physics: TaskPhysics, init: Mapping[str, float], rng: np.random.Generator) -> None:
        # The post's x, y and the lever's start angle were set from `init` already (their `set:`).
        hinge = mujoco.mj_name2id(physics.model, mujoco.mjtObj.mjOBJ_JOINT, "valve_hinge")
        dof = physics.model.jnt_dofadr[hinge]
        physics.model.dof_frictionloss[dof] = float(self.spec.options.get("friction_nm", 0.05))
        physics.model.dof_damping[dof] = float(self.spec.options.get("damping", 0.2))

    def observe(self, physics: TaskPhysics) -> dict[str, np.ndarray]:
        return {"hub_pos": physics.site_pos("hub").copy(), "lever_tip": physics.site_pos("lever_tip").copy(),
                "valve_angle": np.array([physics.quantity("valve_angle")])}

    def shaping_reward(self, physics: TaskPhysics) -> float:
        q = physics.quantity
        return q("valve_angle") - 0.5 * q("tip_to_ee")

    def reset_problems(self, physics: TaskPhysics, init: Mapping[str, float]) -> list[str]:
        angle = physics.joint_qpos("valve_hinge")
        want = init["lever_start"]
        return [] if abs(angle - want) < 0.05 else [f"lever at {angle:.3f} rad instead of {want:.3f}"]
