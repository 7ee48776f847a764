"""Skeleton: a LeRobot SO-101 follower arm behind an enpire station (docs/stations.md, "The adapter interface").

Importable without LeRobot or the arm: `lerobot` is imported in `connect()`. Not tested against a real arm;
the shape, the unit conversions and the safety hand-offs are what this file is for.

How it fits:
- The station keeps a MuJoCo model of the arm (a RobotBuilder of the SO-101 MJCF, e.g. LeRobot's
  `robots/so101_follower/sim/so101_new_calib.xml` with one `motor` actuator per joint whose ctrlrange is the
  servo's torque range). This adapter keeps that model a *mirror* of the real arm (enpire.hardware.mirror),
  so the Cartesian controller's Jacobian and the envelope's joint / speed / workspace checks read the real
  joint state. It subclasses MujocoAdapter only to reuse the model's limits and the observation read from
  the mirror; it never runs the physics.
- The station hands torques (N·m). The SO-101's STS3215 servos run their own position loop, so a torque
  becomes a goal position the servo's P gain turns back into about that torque: goal = q + tau / kp. The
  servo's answer (the goal LeRobot actually sent, after `max_relative_target`) goes back to the station
  in torque units: applied = kp * (goal_sent - q).
- Config: a robot yaml of the plugin, `adapter: examples.hardware.so101_adapter:SO101Adapter` and
  `options: {port: /dev/ttyACM0, id: my_follower, servo_kp_nm_per_rad: 6.0, max_relative_target_deg: 5.0}`;
  the station owner starts it with `python -m enpire.station serve robot=so101 station.confirm_motion=true`
  (or `station.dry_run=true` first: the arm is read, nothing is sent). Without either the station refuses to
  build (exit 2, naming station.confirm_motion), because this class declares `physical = True`.

Where the arm's own safety and the enpire envelope meet (outer to inner):
1. enpire envelope (station, every control step): torque caps (-> goal offsets of at most cap / kp), joint
   position margins, joint speed, the end-effector workspace box, NaN. A breach: the envelope's stop, then
   `safe_stop()` here (hold the present position), the trial ends `unsafe`.
2. LeRobot `max_relative_target` (`send_action`, `ensure_safe_goal_position`): a goal further than this
   from the present position is clipped; the clipped goal comes back and is counted as clamps.
3. The servo's own protections (STS3215 registers such as the torque limit and the overload / current
   protection, set by LeRobot's `configure()` or by you): the servo backs off by itself; the envelope sees it
   as a joint that does not follow. The mirror has no real contacts, so the envelope's contact-force check
   cannot fire for a real collision: the servos' overload protection is the contact reflex of this arm.
   Report it, if you can read it (a status register), by raising RobotStopped("contact_force", ...).
4. No brakes: with `disable_torque_on_disconnect` the arm goes limp on `disconnect()` and falls under
   gravity. Park it (or hold it) before the station closes.

A Franka (libfranka / franky) adapter has the same shape with different hand-offs: it takes torques
directly, but at 1 kHz in its own real-time loop, so the adapter runs that loop in a thread holding the
station's last command (or the arm's impedance controller with the station's targets); its reflexes
(`setCollisionBehavior` torque / force thresholds, joint and Cartesian limits) and its communication stop
(the arm stops itself after too many missed real-time packets) surface as `franka::ControlException`, which
send_command turns into RobotStopped("contact_force" / "joint_velocity" ...) or RobotStopped("estop", ...)
for the communication stop (not the policy's doing: the trial ends `estopped`, no evidence).
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np

from enpire.hardware.adapter import AdapterBinding, AdapterCapabilities, Command, Proprioception, RobotStopped
from enpire.hardware.mirror import mirror_command, mirror_state
from enpire.hardware.mujoco_adapter import MujocoAdapter

ARM_MOTORS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")  # = the MJCF's arm_joints
GRIPPER_MOTOR = "gripper"  # LeRobot reports and takes it in 0..100 (MotorNormMode.RANGE_0_100)


class SO101Adapter(MujocoAdapter):
    """A LeRobot SO-101 follower arm through `lerobot.robots.so101_follower.SO101Follower`."""

    name: ClassVar[str] = "so101"
    physical: ClassVar[bool] = True

    def __init__(self, binding: AdapterBinding) -> None:
        super().__init__(binding)  # limits from the mirror model's ranges; observation read from the mirror
        opts = dict(binding.options)
        self.port: str = str(opts["port"])
        self.robot_id: str = str(opts.get("id", "enpire_so101"))
        self.kp = float(opts.get("servo_kp_nm_per_rad", 6.0))  # torque per radian of goal offset: measure it
        self.max_step_deg = float(opts.get("max_relative_target_deg", 5.0))
        self.period = float(binding.control_dt)
        self._robot: Any = None
        self._q = np.zeros(len(ARM_MOTORS))
        self._read_at: float | None = None
        self._next_tick = 0.0
        r = binding.robot
        self._grip_range = binding.model.jnt_range[
            [int(np.flatnonzero(binding.model.jnt_qposadr == a)[0]) for a in r.grip_qpos_adr]]

    # -- lifecycle ---------------------------------------------------------------------------------
    def connect(self) -> None:
        if self._robot is not None:
            return
        from lerobot.robots.so101_follower import SO101Follower, SO101FollowerConfig  # the arm's own library

        config = SO101FollowerConfig(port=self.port, id=self.robot_id, use_degrees=True,
                                     max_relative_target=self.max_step_deg, disable_torque_on_disconnect=True)
        self._robot = SO101Follower(config)
        self._robot.connect(calibrate=False)  # calibrate once by hand with LeRobot's own tools, not here
        self._sync()
        self._next_tick = time.monotonic() + self.period

    @property
    def connected(self) -> bool:
        return self._robot is not None and bool(self._robot.is_connected)

    def disconnect(self) -> None:
        if self._robot is not None:
            self.safe_stop()
            self._robot.disconnect()  # torque off: the arm goes limp (no brakes), see the module docstring
            self._robot = None

    def capabilities(self) -> AdapterCapabilities:
        return AdapterCapabilities(command="torque", max_control_hz=30.0, moves_scene=False,
                                   own_safety=("max_relative_target", "servo overload protection"))

    # -- per control step --------------------------------------------------------------------------
    def _sync(self) -> None:
        """Read the arm, write it into the mirror (joint speeds by finite difference: LeRobot's observation
        carries positions only)."""
        obs = self._robot.get_observation()
        now = time.monotonic()
        q = np.deg2rad([float(obs[f"{m}.pos"]) for m in ARM_MOTORS])
        dt = now - self._read_at if self._read_at is not None else math.inf
        qd = (q - self._q) / dt if math.isfinite(dt) and dt > 0 else np.zeros_like(q)
        lo, hi = self._grip_range[:, 0], self._grip_range[:, 1]
        grip = lo + (float(obs[f"{GRIPPER_MOTOR}.pos"]) / 100.0) * (hi - lo)
        self._q, self._read_at = q, now
        mirror_state(self.binding, q, qd, grip)

    def observation(self) -> Proprioception:
        self._sync()
        return super().observation()

    def send_command(self, command: Command) -> Command:
        """Torques -> servo goals; LeRobot clips them (max_relative_target) and returns what it sent."""
        if self._robot is None:
            raise RobotStopped("estop", "the SO-101 is not connected")
        n = len(ARM_MOTORS)
        goal = np.rad2deg(self._q + np.asarray(command[:n]) / self.kp)
        glo, ghi = self.limits().grip_ctrl_range[0]
        grip_pct = 100.0 * (float(command[n]) - glo) / (ghi - glo) if ghi > glo else 0.0
        action = {f"{m}.pos": float(g) for m, g in zip(ARM_MOTORS, goal)}
        action[f"{GRIPPER_MOTOR}.pos"] = min(max(grip_pct, 0.0), 100.0)
        try:
            sent = self._robot.send_action(action)
        except (OSError, ConnectionError) as error:  # the serial bus is gone: not the policy's doing
            raise RobotStopped("estop", f"SO-101 bus: {error}") from error
        applied = [self.kp * (math.radians(float(sent[f"{m}.pos"])) - q) for m, q in zip(ARM_MOTORS, self._q)]
        applied.append(glo + float(sent[f"{GRIPPER_MOTOR}.pos"]) / 100.0 * (ghi - glo))
        self._wait_for_tick()  # one control period on the real arm
        self._sync()
        mirror_command(self.binding, applied)
        return applied

    def _wait_for_tick(self) -> None:
        now = time.monotonic()
        if self._next_tick > now:
            time.sleep(self._next_tick - now)
        self._next_tick = max(self._next_tick + self.period, time.monotonic())

    def safe_stop(self) -> None:
        """Hold where it is: the present position as the goal (the servos keep their torque on)."""
        if self._robot is None:
            return
        obs = self._robot.get_observation()
        self._robot.send_action({k: v for k, v in obs.items() if k.endswith(".pos")})
