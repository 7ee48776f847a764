"""The Task and TaskPhysics base classes. How to write a task (dm_control suite style; the walk
through a worked example is docs/add-a-task.md):

1. One folder per task (`enpire/tasks/<name>/` for the shipped ones, any package for a plugin):
   `task.py`, the arena MJCF beside it, `scripted.py` (the baseline) and `conf/` with its
   task, safety, done and policy options. The XML is the *arena*: the table (a plane or box
   whose top is at z = 0, where the robot base stands at `robot.base_pos`, normally the
   origin), lights, the task's objects, and at least one camera named `front` (the default
   video camera). Do not put a robot in it: the scene composer attaches the robot chosen by
   `robot=` at `robot.base_pos`. Robot names get a prefix ("enarm/joint_1"); names in your
   XML keep theirs. Keep objects within the safety workspace box of the task's safety option
   and within reach of the robots that meet its `requires:`. A task yaml with `mjcf:` and
   no Python class at all is a declarative task (enpire.world.declarative).

2. Named state quantities, the only thing the verifier reads (`physics.quantity(name)`, once
   per control step). Declare simple ones in the task yaml (`state_space.<name>.from`: a
   joint position or velocity, a site/body position component, a distance between two
   sites or bodies, a sensor reading; clipped to [low, high]; enpire.world.quantities). For
   the rest, a TaskPhysics subclass adds one zero-argument method per name. Read quantities
   through `quantity` in `observe`, `shaping_reward` and `should_terminate`, and call the
   methods directly in `initialize` and `reset_problems`, which run while the station changes
   the state. Helpers on TaskPhysics: `body_pos`, `body_xmat`, `site_pos`, `geom_pos`,
   `joint_qpos`, `set_joint_qpos`, `set_free_pose`, `ee_pos`, `ee_xmat`, `ee_yaw`,
   `grip_opening`, `model`, `data`, `robot`. Positions come back as live views of MjData
   (copy them to keep them); `bind()` is the place to resolve a query's names to ids once.

3. A Task subclass in `task.py` (the plugin registry finds it by its `name`):

       class Lift(Task):
           name = "lift"                 # = conf/task/lift.yaml: name
           xml = "lift.xml"              # beside this module
           physics_class = LiftPhysics

           def initialize(self, physics, init, rng):   # place objects from the sampled init
               physics.set_free_pose("cube", [init["cube_x"], init["cube_y"], 0.025],
                                     yaw_quat(init["cube_yaw"]))
           def observe(self, physics):                 # task part of the observation
               return {"cube_pos": physics.body_pos("cube").copy()}
           def shaping_reward(self, physics):          # dense, for learning; NOT success
               return -physics.object_to_gripper()
           def reset_problems(self, physics, init):    # optional: declared placement holds?
               return [] if physics.object_height() < 0.01 else ["cube not on the table"]

   `should_terminate` ends an attempt early as a failure (the verifier still judges it). For
   a policy that has finished its script with the task undone, declare `early_stop` in the
   task yaml instead (see drawer's, and enpire/world/rollout.py: EarlyStop).

   `init` holds one value per key of the task yaml's `init`, drawn uniformly by the station
   from a seeded RNG before `initialize` is called. The key `arm_joint_noise` is handled by
   the station (added to the robot's home posture); an init key with `set:` is applied by
   the base class (enpire.world.declarative.apply_init); every other key is yours.
   `initialize` runs after the robot was put at home + noise with the gripper open, and
   before `mj_forward`; the station then lets the scene settle for `reset.settle_s`, and
   verifies the reset (objects where `reset_problems` says, robot settled, no envelope
   breach); it retries with fresh draws up to `reset.max_attempts`.

   Observations: the station adds the robot part (`ee_pos`, `ee_yaw`, `grip`, `joint_pos`,
   `joint_vel`); `observe` returns the task part, with fixed keys and shapes. Success is
   never decided here: the frozen verifier applies the done option to the state quantities.

4. The scripted baseline (`scripted.py`) has `build(spec, params) -> Policy`; see
   enpire/policy/scripted/__init__.py.

Action convention for policies: cartesian `[x, y, z, yaw, grip]`, gripper pointing down, `yaw`
= heading of the jaw closing axis about world z (yaw 0: jaws close along world x).
"""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar

import mujoco
import numpy as np
from dm_control import mjcf

from enpire.spec.model import TaskSpec
from enpire.world.robot_binding import BoundRobot


def yaw_quat(yaw: float) -> np.ndarray:
    """Quaternion (w, x, y, z) of a rotation by `yaw` about world z."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


ZERO3 = (0.0, 0.0, 0.0)
_SITE = mujoco.mjtObj.mjOBJ_SITE


def dist3(a: np.ndarray | tuple[float, ...], b: np.ndarray | tuple[float, ...]) -> float:
    """Euclidean distance of two 3-vectors; a fraction of np.linalg.norm's cost on tiny arrays."""
    ax, ay, az = a.tolist() if isinstance(a, np.ndarray) else a
    bx, by, bz = b.tolist() if isinstance(b, np.ndarray) else b
    return math.sqrt((ax - bx) ** 2 + (ay - by) ** 2 + (az - bz) ** 2)


class TaskPhysics:
    """MuJoCo model and data of one composed scene. Subclasses add only named state queries."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, robot: BoundRobot) -> None:
        self.model = model
        self.data = data
        self.robot = robot
        # Name -> id caches, one per object kind, and name -> bound query: these lookups run several
        # times per control step (observation, shaping reward, verifier), so each is one dict get.
        self._ids: dict[mujoco.mjtObj, dict[str, int]] = {}
        self._bodies = self._ids.setdefault(mujoco.mjtObj.mjOBJ_BODY, {})
        self._queries: dict[str, Callable[[], float]] = {}
        self._values: dict[str, float] = {}  # quantity() of the current control step
        self._views: dict[tuple[str, str], np.ndarray] = {}  # (array, name) -> live row of MjData
        self._vel6 = np.zeros(6)
        self._ee_site = int(robot.ee_site)
        self._ee_xpos = data.site_xpos[robot.ee_site]  # MjData's arrays never move: views stay current
        self._ee_xmat = data.site_xmat[robot.ee_site]
        self.bind()

    def bind(self) -> None:
        """Resolve the names the state queries use, once (subclasses override; runs at construction)."""

    def declare(self, name: str, query: Callable[[], float]) -> None:
        """Add a state quantity declared in the task yaml (`state_space.<name>.from`, enpire.world.quantities).
        A method of the same name wins: Python says what yaml cannot."""
        if not callable(getattr(self, name, None)):
            self._queries[name] = query

    def has_quantity(self, name: str) -> bool:
        return name in self._queries or callable(getattr(self, name, None))

    # -- the verifier's entry point -------------------------------------------------------
    def quantity(self, name: str) -> float:
        """Value of a named state quantity (a method of the subclass), computed once per control step."""
        v = self._values.get(name)
        if v is None:
            fn = self._queries.get(name)
            if fn is None:
                fn = getattr(self, name, None)
                if fn is None or not callable(fn):
                    raise KeyError(f"state quantity {name!r}: neither a method of {type(self).__name__} "
                                   "nor declared with `from:` in the task yaml")
                self._queries[name] = fn
            v = self._values[name] = float(fn())
        return v

    def invalidate(self) -> None:
        """The state changed: quantity() computes afresh (the station calls this after every step and reset)."""
        self._values.clear()

    # -- helpers --------------------------------------------------------------------------
    def _id(self, kind: mujoco.mjtObj, name: str) -> int:
        cache = self._ids.setdefault(kind, {})
        i = cache.get(name)
        if i is None:
            i = mujoco.mj_name2id(self.model, kind, name)
            if i < 0:
                raise KeyError(f"{kind.name} {name!r} not in the scene")
            cache[name] = i
        return i

    def body_id(self, name: str) -> int:
        i = self._bodies.get(name)
        return self._id(mujoco.mjtObj.mjOBJ_BODY, name) if i is None else i

    def _view(self, array: str, kind: mujoco.mjtObj, name: str) -> np.ndarray:
        key = (array, name)
        v = self._views.get(key)
        if v is None:
            v = self._views[key] = getattr(self.data, array)[self._id(kind, name)]
        return v

    def body_pos(self, name: str) -> np.ndarray:
        """World position of a body: a live view (copy it to keep it)."""
        v = self._views.get(("xpos", name))
        return self._view("xpos", mujoco.mjtObj.mjOBJ_BODY, name) if v is None else v

    def body_xmat_flat(self, name: str) -> np.ndarray:
        """Rotation matrix of a body, row-major 9-vector: a live view."""
        v = self._views.get(("xmat", name))
        return self._view("xmat", mujoco.mjtObj.mjOBJ_BODY, name) if v is None else v

    def body_xmat(self, name: str) -> np.ndarray:
        return self.body_xmat_flat(name).reshape(3, 3)

    def site_pos(self, name: str) -> np.ndarray:
        """World position of a site: a live view (copy it to keep it)."""
        v = self._views.get(("site_xpos", name))
        return self._view("site_xpos", mujoco.mjtObj.mjOBJ_SITE, name) if v is None else v

    def geom_pos(self, name: str) -> np.ndarray:
        return self.data.geom_xpos[self._id(mujoco.mjtObj.mjOBJ_GEOM, name)]

    def joint_qpos_adr(self, name: str) -> int:
        """Address of a joint's (first) position in qpos."""
        return int(self.model.jnt_qposadr[self._id(mujoco.mjtObj.mjOBJ_JOINT, name)])

    def joint_qpos(self, name: str) -> float:
        return float(self.data.qpos[self.model.jnt_qposadr[self._id(mujoco.mjtObj.mjOBJ_JOINT, name)]])

    def set_joint_qpos(self, name: str, value: float) -> None:
        j = self._id(mujoco.mjtObj.mjOBJ_JOINT, name)
        self.data.qpos[self.model.jnt_qposadr[j]] = value
        self.data.qvel[self.model.jnt_dofadr[j]] = 0.0

    def set_free_pose(self, joint: str, pos: np.ndarray | list[float], quat: np.ndarray | list[float]) -> None:
        """Place a freejoint body (pos, quat w-x-y-z) at rest."""
        j = self._id(mujoco.mjtObj.mjOBJ_JOINT, joint)
        a, v = self.model.jnt_qposadr[j], self.model.jnt_dofadr[j]
        self.data.qpos[a:a + 3] = pos
        self.data.qpos[a + 3:a + 7] = quat
        self.data.qvel[v:v + 6] = 0.0

    def ee_pos(self) -> np.ndarray:
        """Tool centre point, world frame: a live view (copy it to keep it)."""
        return self._ee_xpos

    def ee_xmat(self) -> np.ndarray:
        return self._ee_xmat.reshape(3, 3)

    def ee_yaw(self) -> float:
        """Heading of the jaw axis about world z, in (-pi/2, pi/2] (the jaws are symmetric)."""
        x = self._ee_xmat.tolist()  # row-major: the x axis is entries 0, 3, 6
        yaw = math.atan2(-x[3], -x[0])
        return (yaw + math.pi / 2) % math.pi - math.pi / 2

    def ee_vel(self) -> np.ndarray:
        """Linear velocity of the tool centre point, world frame (a fresh array)."""
        mujoco.mj_objectVelocity(self.model, self.data, mujoco.mjtObj.mjOBJ_SITE, self.robot.ee_site, self._vel6, 0)
        return self._vel6[3:].copy()

    def ee_speed_now(self) -> float:
        """|ee_vel()| without allocating (a per-step helper for state queries)."""
        mujoco.mj_objectVelocity(self.model, self.data, _SITE, self._ee_site, self._vel6, 0)
        _, _, _, vx, vy, vz = self._vel6.tolist()
        return math.sqrt(vx ** 2 + vy ** 2 + vz ** 2)  # = dist3(v, ZERO3), term for term

    def grip_opening(self) -> float:
        """Distance between the jaws (m), or the hand's closure measure for other grippers."""
        return self.robot.grip_opening(self.data)


class Task(ABC):
    """One task: arena MJCF, initial state, observations, shaping reward, termination."""

    name: ClassVar[str]
    xml: ClassVar[str]
    physics_class: ClassVar[type[TaskPhysics]] = TaskPhysics
    default_camera: ClassVar[str] = "front"
    detector_camera: ClassVar[str | None] = None  # the success detector's camera (enpire.detector); None: default

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec

    @classmethod
    def arena_file(cls) -> Path:
        """The arena MJCF: `xml` beside the module that defines the class."""
        return Path(importlib.import_module(cls.__module__).__file__).parent / cls.xml

    def arena(self) -> mjcf.RootElement:
        """A fresh MJCF arena (the XML beside the module)."""
        return mjcf.from_path(str(self.arena_file()))

    @abstractmethod
    def initialize(self, physics: TaskPhysics, init: Mapping[str, float], rng: np.random.Generator) -> None:
        """Put the task's objects where the sampled `init` values say."""

    @abstractmethod
    def observe(self, physics: TaskPhysics) -> dict[str, np.ndarray]:
        """The task part of the observation (fixed keys and shapes)."""

    @abstractmethod
    def shaping_reward(self, physics: TaskPhysics) -> float:
        """Dense reward for learners; never the success criterion."""

    def should_terminate(self, physics: TaskPhysics) -> bool:
        """True when the attempt cannot succeed any more (ends it early as a failure)."""
        return False

    def reset_problems(self, physics: TaskPhysics, init: Mapping[str, float]) -> list[str]:
        """What is wrong with a freshly settled reset (empty: the scene is as declared)."""
        return []
