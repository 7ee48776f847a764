"""The MuJoCo robot behind the adapter seam: the same trials as before the refactor; applied commands kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from enpire.hardware.adapter import PROPRIOCEPTION, RobotAdapter
from enpire.hardware.mujoco_adapter import MujocoAdapter
from enpire.hardware.registry import adapter_class
from enpire.plugins import PluginError
from enpire.records import Candidate, TrialRequest
from enpire.spec import load_spec
from enpire.world.station import SimStation
from tests.hardware.cases import PushHard, run_cases
from tests.hardware.fakes import HalvingAdapter, PhysicalMujocoAdapter, ReflexAdapter

GOLDEN = Path(__file__).with_name("golden_records.json")


def test_trial_records_equal_those_from_before_the_adapter_refactor(tmp_path: Path) -> None:
    # golden_records.json was written by tests/hardware/cases.py from the tree before the MuJoCo robot moved
    # behind enpire.hardware (floats as JSON writes them: exact round trips)
    assert json.loads(json.dumps(run_cases(str(tmp_path)))) == json.loads(GOLDEN.read_text())


def test_the_default_adapter_is_the_mujoco_one_and_satisfies_the_protocol() -> None:
    spec = load_spec(["task=reach"])
    assert spec.robot.adapter == "mujoco" and spec.station.dry_run is False and spec.station.confirm_motion is False
    st = SimStation(spec)
    assert type(st.adapter) is MujocoAdapter and isinstance(st.adapter, RobotAdapter)
    assert st.adapter.connected and not st.adapter.physical
    st.reset(0)
    obs = st.observe()
    assert list(obs)[:5] == list(PROPRIOCEPTION)  # the robot part first, as before
    limits = st.adapter.limits()
    assert limits.dof == 6 and limits.torque_nm[0] == (-80.0, 80.0)
    st.close()
    assert not st.adapter.connected
    st.close()  # idempotent


def test_an_unknown_adapter_name_is_refused_naming_the_key() -> None:
    with pytest.raises(PluginError, match=r"robot\.adapter: got 'nope'"):
        adapter_class("nope")
    with pytest.raises(PluginError, match="cannot be imported"):
        adapter_class("tests.hardware.fakes:Missing")


def test_the_station_records_and_uses_the_command_the_adapter_applied(tmp_path: Path) -> None:
    spec = load_spec(["task=reach", "policy.action_mode=torque", "video.enabled=false"])
    st = SimStation(spec, 0, adapter=HalvingAdapter)
    st.reset(1)
    clamps, _ = st.step(np.r_[np.full(6, 12.0), 0.0], 0)
    asked, applied = HalvingAdapter.last
    assert st.applied is applied and applied != asked
    assert applied[:6] == [v * 0.5 for v in asked[:6]]
    r = st.scene.robot
    assert st.scene.data.ctrl[r.arm_act].tolist() == applied[:6]  # what trajectories and replays record
    assert clamps >= 6  # the envelope's clamps plus the six torques the adapter changed
    rec = st.run_trial(TrialRequest("h1", 0, 1, Candidate("c"), out_dir=str(tmp_path)), policy=PushHard())
    assert rec.clamps >= rec.steps * 6


def test_an_adapter_applying_a_command_outside_its_own_limits_stops_the_trial_unsafe() -> None:
    class Liar(MujocoAdapter):
        def send_command(self, command: list[float]) -> list[float]:
            super().send_command(command)
            return [1e9] * len(command)

    st = SimStation(load_spec(["task=reach", "policy.action_mode=torque"]), adapter=Liar)
    st.reset(0)
    _, event = st.step(np.r_[np.zeros(6), 0.0], 0)
    assert event is not None and event.kind == "applied_command" and "within its own limits" in event.detail


def test_a_real_arm_that_applies_more_than_the_envelope_allows_is_stopped_unsafe(tmp_path: Path) -> None:
    """The envelope's caps bind what a physical adapter reports it applied, even when it edits the command it was
    given in place and hands the same list back."""

    class Tripler(PhysicalMujocoAdapter):
        def send_command(self, command: list[float]) -> list[float]:
            command[:6] = [3.0 * v for v in command[:6]]  # in place: the same list object comes back
            return super().send_command(command)

    spec = load_spec(["task=reach", "policy.action_mode=torque", "station.confirm_motion=true"])
    st = SimStation(spec, adapter=Tripler)
    rec = st.run_trial(TrialRequest("t3", 0, 1, Candidate("c"), out_dir=str(tmp_path)), policy=PushHard())
    assert rec.outcome == "unsafe" and rec.safety_events[0].kind == "applied_command"
    assert rec.safety_events[0].value > rec.safety_events[0].limit == spec.safety.torque_limit_nm


def test_a_real_arm_is_stopped_at_the_end_of_every_trial_and_a_dry_run_never_stops_it(tmp_path: Path) -> None:
    class Raises(PushHard):
        def act(self, obs: dict) -> np.ndarray:
            raise RuntimeError("policy bug")

    spec = load_spec(["task=reach", "policy.action_mode=torque", "station.confirm_motion=true"])
    st = SimStation(spec, adapter=PhysicalMujocoAdapter)
    outcomes = []
    for k, policy in enumerate((PushHard(), Raises())):
        PhysicalMujocoAdapter.stops = 0
        rec = st.run_trial(TrialRequest(f"s{k}", 0, k, Candidate("c"), out_dir=str(tmp_path)), policy=policy)
        outcomes.append(rec.outcome)
        assert PhysicalMujocoAdapter.stops >= 1, rec.outcome  # at the trial's end, whatever ended it
    assert outcomes[1] == "crash"
    dry = SimStation(load_spec(["task=reach", "policy.action_mode=torque", "station.dry_run=true"]),
                     adapter=PhysicalMujocoAdapter)
    PhysicalMujocoAdapter.stops = 0
    dry.run_trial(TrialRequest("d0", 0, 0, Candidate("c"), out_dir=str(tmp_path)), policy=PushHard())
    dry.close()
    assert PhysicalMujocoAdapter.stops == 0  # a stop is a command too: a dry run sends none


def test_a_real_arm_left_outside_the_envelope_fails_its_reset() -> None:
    class Stranded(PhysicalMujocoAdapter):
        def observation(self) -> dict:
            obs = super().observation()
            self._data.qvel[self.binding.robot.dof_adr] = 50.0  # the real arm still swinging after the reset
            return obs

    st = SimStation(load_spec(["task=reach", "station.confirm_motion=true"]), adapter=Stranded)
    assert not st.reset(0)
    assert "the real arm is outside the envelope after the reset" in st.reset_problems[0]


@pytest.mark.parametrize(("kind", "outcome"), [("contact_force", "unsafe"), ("estop", "estopped")])
def test_the_robots_own_reflex_becomes_a_safety_event(kind: str, outcome: str, tmp_path: Path) -> None:
    ReflexAdapter.kind, ReflexAdapter.sent = kind, 0  # type: ignore[assignment]
    st = SimStation(load_spec(["task=reach", "policy.action_mode=torque"]), adapter=ReflexAdapter)
    rec = st.run_trial(TrialRequest("r", 0, 0, Candidate("c"), out_dir=str(tmp_path)), policy=Hold())
    assert rec.outcome == outcome and rec.steps == 3
    event = rec.safety_events[-1]
    assert (event.kind, event.value, event.limit, event.detail) == (kind, 31.0, 20.0, "robot: collision reflex")
    assert rec.reason == ("robot stopped itself at control step 2 (collision reflex)" if kind == "estop"
                          else "safety stop: contact_force value=31.0 limit=20.0")


class Hold:
    def reset(self, obs: dict[str, np.ndarray], feedback: object = None) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.zeros(7)
