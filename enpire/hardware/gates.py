"""Real-motion gates, checked when a station is built, before its adapter is even constructed.

- `station.confirm_motion`: an adapter class that declares `physical = True` (or declares nothing: an
  adapter that does not say is treated as physical) moves only when the station's owner set it to true.
  Without it the station refuses to build: a SpecError naming the key (exit 2 from the station server).
- `station.dry_run`: no command leaves the station; a physical adapter may then connect (to be observed)
  without confirm_motion. The station, not the adapter, withholds the commands (SimStation._dry_step).
- compatibility: the adapter's robot has the spec's degrees of freedom, keeps up with the control rate,
  takes torque commands and observes every proprioception key the station hands a policy.
"""

from __future__ import annotations

from enpire.hardware.adapter import PROPRIOCEPTION, RobotAdapter
from enpire.spec.errors import Problem, SpecError
from enpire.spec.model import ExperimentSpec


def is_physical(cls: type[RobotAdapter] | RobotAdapter) -> bool:
    """True unless the adapter explicitly declares `physical = False` (fail safe)."""
    return getattr(cls, "physical", True) is not False


def motion_problems(cls: type[RobotAdapter], spec: ExperimentSpec) -> list[Problem]:
    """A physical adapter without station.confirm_motion (and not a dry run) must not be built."""
    gates = spec.station
    if not is_physical(cls) or gates.confirm_motion or gates.dry_run:
        return []
    name = getattr(cls, "name", cls.__name__)
    return [Problem("station.confirm_motion", gates.confirm_motion,
                    f"true before adapter {name!r} of robot {spec.robot.name!r} may move: it declares physical=True "
                    "(a real arm). Set station.confirm_motion=true once the cell is clear and the arm's own stop is "
                    "in reach, or station.dry_run=true to run without sending commands")]


def dynamics_problems(cls: type[RobotAdapter], spec: ExperimentSpec) -> list[Problem]:
    """Simulated dynamics (a delay, sensor noise, scaled masses: enpire.world.dynamics) are never injected into a
    real arm's loop: a physical adapter needs dynamics=nominal."""
    if not is_physical(cls) or spec.dynamics.nominal:
        return []
    name = getattr(cls, "name", cls.__name__)
    return [Problem("dynamics", spec.dynamics.name,
                    f"nominal with adapter {name!r} of robot {spec.robot.name!r}: it declares physical=True (a real "
                    "arm has the physics it has); dynamics other than nominal are for simulated stations")]


def compatibility_problems(adapter: RobotAdapter, spec: ExperimentSpec) -> list[Problem]:
    """What the spec asks of the robot that this adapter cannot give."""
    out: list[Problem] = []
    limits, caps, name = adapter.limits(), adapter.capabilities(), adapter.name
    if limits.dof != spec.robot.dof:
        out.append(Problem("robot.dof", spec.robot.dof, f"the {limits.dof} arm joints adapter {name!r} drives"))
    hz = spec.robot.controller.control_hz
    if hz > caps.max_control_hz:
        out.append(Problem("robot.controller.control_hz", hz,
                           f"at most {caps.max_control_hz:g} Hz, the fastest adapter {name!r} keeps up with"))
    if caps.command != "torque":
        out.append(Problem("robot.adapter", spec.robot.adapter,
                           f"an adapter applying torque commands (adapter {name!r} applies {caps.command!r}; "
                           "convert inside send_command, as examples/hardware/so101_adapter.py does)"))
    missing = [k for k in PROPRIOCEPTION if k not in caps.proprioception]
    if missing:
        out.append(Problem("robot.adapter", spec.robot.adapter,
                           f"an adapter observing {list(PROPRIOCEPTION)} (adapter {name!r} lacks {missing})"))
    return out


def refuse(problems: list[Problem]) -> None:
    """Raise the station build's SpecError (exit 2) when there is anything to refuse."""
    if problems:
        raise SpecError(problems, source="station")
