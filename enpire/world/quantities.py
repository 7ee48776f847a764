"""State quantities declared in a task yaml instead of Python (`state_space.<name>.from`).

A declaration names MuJoCo elements of the arena (or `ee`, the robot's tool centre point) and
what to read from them; every value is clipped to the quantity's declared [low, high]:

    valve_angle:   {low: -3.2, high: 3.2, unit: rad, from: {joint_pos: valve_hinge}}
    valve_speed:   {low: -20, high: 20, unit: rad/s, from: {joint_vel: valve_hinge}}
    block_x:       {low: 0, high: 1, unit: m, from: {position: "body:block", axis: x}}
    tip_to_ee:     {low: 0, high: 2, unit: m, from: {distance: ["site:lever_tip", ee]}}
    block_to_goal: {low: 0, high: 1, unit: m, from: {distance: ["body:block", "site:goal"], axes: xy}}
    touch:         {low: 0, high: 100, unit: N, from: {sensor: tip_touch, index: 0}}

Names are resolved to ids once, when the scene is built (an unknown name is an error naming the
quantity), and each query reads live MjData, so a declared quantity costs what a hand-written
method does. These files decide success like the task's Python does: the fingerprint covers this
module and the declarations are part of the task spec.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import mujoco
import numpy as np

AXES = {"x": 0, "y": 1, "z": 2}
_OBJ = {"site": mujoco.mjtObj.mjOBJ_SITE, "body": mujoco.mjtObj.mjOBJ_BODY}


class QuantityError(ValueError):
    """A declaration that does not fit the scene (unknown element, bad reference)."""


def _id(model: mujoco.MjModel, kind: mujoco.mjtObj, name: str, quantity: str) -> int:
    i = mujoco.mj_name2id(model, kind, name)
    if i < 0:
        raise QuantityError(f"task.state_space.{quantity}.from: {kind.name.removeprefix('mjOBJ_').lower()} "
                            f"{name!r} is not in the scene")
    return i


def point_view(model: mujoco.MjModel, data: mujoco.MjData, ref: str, ee_site: int, quantity: str) -> np.ndarray:
    """The live world position of "site:<name>", "body:<name>" or "ee" (a view into MjData)."""
    if ref == "ee":
        return data.site_xpos[ee_site]
    kind, _, name = ref.partition(":")
    if kind not in _OBJ or not name:
        raise QuantityError(f"task.state_space.{quantity}.from: got {ref!r}; expected 'site:<name>', "
                            "'body:<name>' or 'ee'")
    i = _id(model, _OBJ[kind], name, quantity)
    return data.site_xpos[i] if kind == "site" else data.xpos[i]


def _clipped(read: Callable[[], float], low: float, high: float) -> Callable[[], float]:
    def query() -> float:
        v = read()
        return low if v < low else high if v > high else v  # NaN passes through: the envelope flags it
    return query


def build_query(model: mujoco.MjModel, data: mujoco.MjData, ee_site: int, name: str,
                source: Mapping[str, Any], low: float, high: float) -> Callable[[], float]:
    """A zero-argument function reading one declared quantity from live state."""
    if "joint_pos" in source or "joint_vel" in source:
        field = "joint_pos" if "joint_pos" in source else "joint_vel"
        j = _id(model, mujoco.mjtObj.mjOBJ_JOINT, source[field], name)
        adr = int(model.jnt_qposadr[j] if field == "joint_pos" else model.jnt_dofadr[j])
        array = data.qpos if field == "joint_pos" else data.qvel
        return _clipped(lambda: float(array[adr]), low, high)
    if "position" in source:
        view = point_view(model, data, source["position"], ee_site, name)
        axis = AXES[source.get("axis", "z")]
        return _clipped(lambda: float(view[axis]), low, high)
    if "distance" in source:
        a, b = (point_view(model, data, ref, ee_site, name) for ref in source["distance"])
        axes = [AXES[c] for c in source.get("axes", "xyz")]

        def dist() -> float:
            return math.sqrt(sum((float(a[i]) - float(b[i])) ** 2 for i in axes))
        return _clipped(dist, low, high)
    if "sensor" in source:
        s = _id(model, mujoco.mjtObj.mjOBJ_SENSOR, source["sensor"], name)
        index = int(source.get("index", 0))
        if not 0 <= index < int(model.sensor_dim[s]):
            raise QuantityError(f"task.state_space.{name}.from.index: got {index}; sensor {source['sensor']!r} "
                                f"has {int(model.sensor_dim[s])} values")
        adr = int(model.sensor_adr[s]) + index
        return _clipped(lambda: float(data.sensordata[adr]), low, high)
    raise QuantityError(f"task.state_space.{name}.from: got {dict(source)}; expected one of joint_pos, joint_vel, "
                        "position, distance, sensor")
