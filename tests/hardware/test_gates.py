"""Real-motion gates: a physical adapter moves only with station.confirm_motion; dry_run sends nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from enpire.fleet.stations import make_station
from enpire.judge.pools import NO_EVIDENCE
from enpire.policy.factory import make_policy
from enpire.records import Candidate, TrialRequest
from enpire.spec import SpecError, load_spec
from enpire.world.estop import ESTOP_ENV
from enpire.world.station import SimStation
from tests.hardware.cases import record_fields
from tests.hardware.fakes import CountingAdapter, PhysicalMujocoAdapter

PHYSICAL = "robot.adapter=tests.hardware.fakes:PhysicalMujocoAdapter"  # resolved by import path (the registry)


def _trial(st: SimStation, tmp_path: Path, seed: int = 3) -> object:
    return st.run_trial(TrialRequest(f"t{seed}", 0, seed, Candidate("c"), out_dir=str(tmp_path)))


def test_a_physical_adapter_without_confirm_motion_is_refused_before_it_is_built() -> None:
    PhysicalMujocoAdapter.connects = 0
    with pytest.raises(SpecError, match=r"station\.confirm_motion: got false; expected true before adapter "
                                        r"'fake_physical' of robot 'enarm' may move") as refused:
        make_station(load_spec(["task=drawer", PHYSICAL]), 0)
    assert [p.path for p in refused.value.problems] == ["station.confirm_motion"]
    assert PhysicalMujocoAdapter.connects == 0  # never constructed, never connected


def test_a_physical_adapter_with_confirm_motion_moves_and_gives_the_simulated_records(tmp_path: Path) -> None:
    PhysicalMujocoAdapter.sent = 0
    moving = make_station(load_spec(["task=drawer", PHYSICAL, "station.confirm_motion=true"]), 0)
    assert moving.adapter.physical and moving.adapter.connected
    rec = _trial(moving, tmp_path)
    assert PhysicalMujocoAdapter.sent == rec.steps > 0
    simulated = _trial(make_station(load_spec(["task=drawer"]), 0), tmp_path)
    assert record_fields(rec) == record_fields(simulated) and rec.outcome == "success"


def test_dry_run_sends_no_command_and_the_trial_is_no_evidence(tmp_path: Path) -> None:
    CountingAdapter.sent = 0
    spec = load_spec(["task=drawer", "station.dry_run=true"])
    dry = SimStation(spec, 0, policy_factory=make_policy, adapter=CountingAdapter)  # make_station's wiring
    dry.reset(3)
    before = dry.scene.data.qpos.copy()
    rec = _trial(dry, tmp_path)
    assert CountingAdapter.sent == 0 and dry.applied is None
    assert rec.outcome == "estopped" and rec.outcome in NO_EVIDENCE  # never counted for or against the policy
    assert not (rec.pass_at_1 or rec.pass_at_k) and rec.success_attempt is None
    assert rec.reason.startswith("dry run (station.dry_run=true): no command left the station")
    assert rec.steps > 0 and dry.withheld == rec.steps and len(dry.withheld_command) == 8  # controller + envelope ran
    assert np.array_equal(dry.scene.data.qpos[dry.scene.robot.qpos_adr], before[dry.scene.robot.qpos_adr])
    # the same seed, not dry: this candidate succeeds, so the dry run's verdict was withheld, not a failure
    assert _trial(make_station(load_spec(["task=drawer"]), 0), tmp_path).outcome == "success"


def test_dry_run_lets_a_physical_adapter_connect_without_confirm_motion(tmp_path: Path) -> None:
    PhysicalMujocoAdapter.sent = 0
    st = make_station(load_spec(["task=reach", PHYSICAL, "station.dry_run=true"]), 0)
    rec = _trial(st, tmp_path, seed=0)
    assert st.adapter.connected and PhysicalMujocoAdapter.sent == 0 and rec.outcome == "estopped"


def test_the_station_server_refuses_a_physical_adapter_without_confirm_motion(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from enpire.station.__main__ import main

    monkeypatch.setenv("ENPIRE_STATION_TOKEN", "t0k3n")
    monkeypatch.setenv(ESTOP_ENV, "")  # configure() points it at the station's flag: restored afterwards
    code = main(["serve", "task=reach", PHYSICAL, "--port", "0", "--work-dir", str(tmp_path)])
    assert code == 2
    assert "station.confirm_motion: got false; expected true before adapter 'fake_physical'" in capsys.readouterr().err


def test_python_m_enpire_refuses_a_physical_adapter_without_confirm_motion_before_anything_runs(
        tmp_path: Path) -> None:
    """The runner's preflight (exit 2, nothing run), not a station worker failing to start."""
    import subprocess
    import sys

    from enpire import PROJECT_ROOT

    args = [sys.executable, "-m", "enpire", "task=reach", "robot.adapter=tests.hardware.fakes:PhysicalMujocoAdapter",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"hydra.run.dir={tmp_path}/run"]
    out = subprocess.run(args, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "station.confirm_motion" in out.stderr and "physical=True" in out.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "run" / "journal.jsonl").exists()


def test_simulated_dynamics_are_never_injected_into_a_real_arms_loop() -> None:
    PhysicalMujocoAdapter.connects = 0
    with pytest.raises(SpecError, match=r"dynamics: got \"perturbed\"; expected nominal with adapter 'fake_physical'"):
        make_station(load_spec(["task=drawer", PHYSICAL, "station.confirm_motion=true", "dynamics=perturbed"]), 0)
    assert PhysicalMujocoAdapter.connects == 0


def test_the_twin_of_a_real_arm_runs_the_simulated_robot_without_gates_or_a_persons_resets() -> None:
    from enpire.fleet.screen import twin_spec

    spec = load_spec(["task=drawer", PHYSICAL, "station.confirm_motion=true", "supervision.human_reset=true",
                      "dynamics=perturbed", "screen.twin=sim", "executor=ray"])
    twin = twin_spec(spec)
    assert twin.robot.adapter == "mujoco" and twin.dynamics.nominal and not twin.station.confirm_motion
    assert twin.resolved["supervision"]["human_reset"] is False and twin.executor.kind == "local"
    assert twin.executor.start_method == "forkserver" and twin.seed != spec.seed and not twin.video.enabled
    station = make_station(twin, 0)  # builds: the simulated arm, no confirm_motion needed
    try:
        assert not station.adapter.physical
    finally:
        station.close()
