"""The hardware adapter protocol: "the robot" as the station sees it, apart from the station itself.

A station (enpire.world.station.SimStation) owns the controller, the safety envelope, the estop and the
frozen verifier. It drives its robot through one adapter and nothing else:

    policy action -> controller (torques) -> envelope clamp -> adapter.send_command -> applied command
                                                     ^                                        |
                                                     +---- envelope check <- adapter state <--+

The adapter moves the arm and reports its state; it never decides what is safe or what succeeded. Its own
clipping (actuator ranges, a driver's rate limits) happens inside `send_command`, which returns the
command actually applied, as LeRobot's `Robot.send_action` returns the action actually sent.

State lives in the station's MuJoCo model (`AdapterBinding.data`): the MuJoCo adapter *is* that model (its
`send_command` runs the physics), a physical adapter keeps it as a mirror of the real arm (it writes the
joint state it reads into `data` and runs the kinematics, enpire.hardware.mirror), so the controller's
Jacobian and the envelope's checks read the same arrays whichever robot is behind them.

Commands cross the seam as one flat list of floats: the arm's joint torques in N·m (in the order of the
robot's `arm_joints`), then the gripper actuators' controls (in the units of their ctrlrange). Units stay
those of the model; an adapter of a position-controlled arm converts (examples/hardware/so101_adapter.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import mujoco

    from enpire.world.robot_binding import BoundRobot

Command = list[float]  # arm torques (N·m, arm_joints order) then gripper controls (their ctrlrange units)
Proprioception = dict[str, np.ndarray]
# Keys (and shapes) every adapter's observation has: the robot part of the policy's observation.
PROPRIOCEPTION: tuple[str, ...] = ("ee_pos", "ee_yaw", "grip", "joint_pos", "joint_vel")


@dataclass(frozen=True)
class AdapterBinding:
    """Where the adapter's robot sits in the station's model, and the station's control period."""

    model: mujoco.MjModel
    data: mujoco.MjData  # the simulated world (MuJoCo adapter) or the mirror of the real arm (physical)
    robot: BoundRobot
    physics_steps_per_control: int
    control_dt: float  # s between two commands
    options: Mapping[str, Any] = field(default_factory=dict)  # `robot.options` (a port, an IP ...)


@dataclass(frozen=True)
class AdapterLimits:
    """What the robot itself accepts (its own limits, not the envelope's, which are usually tighter)."""

    joint_range_rad: tuple[tuple[float, float], ...]  # per arm joint; (-inf, inf) for a joint without stops
    torque_nm: tuple[tuple[float, float], ...]  # per arm joint: the actuator's command range
    grip_ctrl_range: tuple[tuple[float, float], ...]  # per gripper actuator

    @property
    def dof(self) -> int:
        return len(self.torque_nm)

    def command_bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(low, high) of every entry of a Command (arm torques, then gripper controls)."""
        rows = (*self.torque_nm, *self.grip_ctrl_range)
        return tuple(float(r[0]) for r in rows), tuple(float(r[1]) for r in rows)


@dataclass(frozen=True)
class AdapterCapabilities:
    """What the adapter can do; the station refuses a spec that asks for more (enpire.hardware.gates)."""

    command: str = "torque"  # what the arm entries of a Command are applied as ("torque" at the station seam)
    max_control_hz: float = math.inf  # the fastest command rate it keeps up with (robot.controller.control_hz)
    proprioception: tuple[str, ...] = PROPRIOCEPTION
    moves_scene: bool = False  # True: the adapter advances the whole scene (objects too), as the simulator does
    own_safety: tuple[str, ...] = ()  # the robot's own reflexes (torque limits, communication-loss stop ...)


StopKind = Literal["contact_force", "joint_position", "joint_velocity", "workspace", "estop"]


class RobotStopped(Exception):  # noqa: N818 - an event the robot reports, not a bug
    """Raised by `send_command` when the robot's own safety reflex stopped it (a collision reflex, a torque or
    speed limit of its drives, a communication-loss stop). The station records it as a SafetyEvent of `kind`:
    a limit kind ends the trial `unsafe` like the envelope's own breach (the policy drove the arm there);
    `estop` (the link or the robot's stop button, nothing the policy did) ends it `estopped`, no evidence."""

    def __init__(self, kind: StopKind, detail: str, value: float | None = None, limit: float | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail, self.value, self.limit = kind, detail, value, limit


@runtime_checkable
class RobotAdapter(Protocol):
    """One robot behind a station. `physical = True` means commands move a real arm: the station refuses to
    build unless its owner set `station.confirm_motion: true` (or `station.dry_run: true`)."""

    name: ClassVar[str]
    physical: ClassVar[bool]

    def connect(self) -> None:
        """Open the link to the robot (idempotent). Afterwards `observation` reads its state."""

    @property
    def connected(self) -> bool: ...

    def capabilities(self) -> AdapterCapabilities: ...

    def limits(self) -> AdapterLimits: ...

    def observation(self) -> Proprioception:
        """The robot's state now: PROPRIOCEPTION keys, fresh arrays the caller may keep. A physical adapter
        also brings the station's model up to date with it (the envelope checks that model)."""

    def send_command(self, command: Command) -> Command:
        """Apply one command for one control period; return what was applied after the adapter's own
        clipping. Return `command` itself (the same list) when it was applied unchanged: the station tests
        identity on its per-step path. When this returns, the station's model holds the robot's new state.
        Raise RobotStopped when the robot's own reflex stopped it."""

    def safe_stop(self) -> None:
        """The robot's own stop (hold position, brakes ...), after the envelope's stop command. Must not raise
        for a robot that is already stopped."""

    def disconnect(self) -> None:
        """Stop and close the link (idempotent)."""
