"""The envelope: no out-of-limit command ever reaches data.ctrl; every breach ends its trial at once."""

from __future__ import annotations

import numpy as np
import pytest

from enpire.fleet.stations import make_station
from enpire.records import Candidate, TrialRequest
from enpire.world.station import SimStation
from tests.world.conftest import spec_for


class Audit:
    """Step hook: checks the robot's data.ctrl against the envelope's limits after every control step."""

    def __init__(self) -> None:
        self.steps = 0
        self.violations = 0

    def bind(self, st: SimStation) -> None:
        self.act, self.cap, self.gact, self.grange = st._envelope.ctrl_bounds()
        r = st.scene.robot
        self.cap = np.minimum(self.cap, np.minimum(st.spec.safety.torque_limit_nm, np.abs(r.ctrl_range[:, 1])))

    def __call__(self, model, data) -> None:
        self.steps += 1
        arm, grip = data.ctrl[self.act], data.ctrl[self.gact]
        ok = np.isfinite(arm).all() and (np.abs(arm) <= self.cap + 1e-12).all()
        ok = ok and np.isfinite(grip).all() and (grip >= self.grange[:, 0]).all() and (grip <= self.grange[:, 1]).all()
        self.violations += not ok


class Adversary:
    """Mostly plausible random commands, and now and then a maximal, alternating, NaN, Inf or far-away one."""

    def __init__(self, seed: int, size: int, mode: str, p_extreme: float = 0.03) -> None:
        self.rng = np.random.default_rng(seed)
        self.size, self.mode, self.n, self.p = size, mode, 0, p_extreme

    def reset(self, obs, feedback=None) -> None:
        pass

    def _plausible(self, obs) -> np.ndarray:
        if self.mode == "cartesian":
            return np.r_[obs["ee_pos"] + self.rng.normal(0, 0.03, 3), self.rng.uniform(-0.5, 0.5), self.rng.random()]
        if self.mode == "joint":
            return np.r_[obs["joint_pos"] + self.rng.normal(0, 0.05, self.size - 1), self.rng.random()]
        return np.r_[self.rng.uniform(-40, 40, self.size - 1), self.rng.random()]  # raw torques, beyond the caps

    def act(self, obs) -> np.ndarray:
        self.n += 1
        if self.rng.random() >= self.p:
            return self._plausible(obs)
        kind = self.rng.integers(5)
        if kind == 0:
            return np.full(self.size, 1e6 * (-1) ** self.n)  # maximal, alternating sign
        if kind == 1:
            return np.full(self.size, np.nan)
        if kind == 2:
            return np.full(self.size, self.rng.choice([np.inf, -np.inf]))
        if kind == 3 and self.mode == "cartesian":
            return np.array([5.0, -5.0, 3.0, 0.0, 1.0])  # far outside the workspace
        return self.rng.uniform(-1e3, 1e3, self.size)


def _run(task: str, mode: str, commands: int, seed0: int = 0) -> tuple[Audit, int, int]:
    audit = Audit()
    spec = spec_for(task, "enarm", f"policy.action_mode={mode}")
    st = make_station(spec, 0, step_hook=audit)
    audit.bind(st)
    sent = rollouts = 0
    seed = seed0
    while sent < commands:
        adv = Adversary(seed, st.action_size, mode)
        rec = st.run_trial(TrialRequest(f"adv{seed}", 0, seed, Candidate("adv")), policy=adv)
        rollouts += 1
        sent += adv.n
        assert rec.outcome in ("unsafe", "failure", "success"), rec.error
        if rec.outcome == "unsafe":
            ev = rec.safety_events[0]
            assert rec.steps == ev.step + 1, "a breach must end the trial within one control step"
            assert adv.n == rec.steps, "no command may be taken from the policy after a breach"
        seed += 1
    return audit, sent, rollouts


@pytest.mark.parametrize("mode", ["cartesian", "torque", "joint"])
def test_adversary_never_gets_an_out_of_limit_command_into_ctrl(mode: str) -> None:
    audit, sent, rollouts = _run("drawer", mode, 600)
    print(f"adversarial[{mode}]: {sent} commands, {rollouts} rollouts, {audit.steps} audited steps, "
          f"{audit.violations} out-of-limit ctrl")
    assert audit.steps > 0 and audit.violations == 0


@pytest.mark.slow
def test_adversarial_property_100k_commands_1000_rollouts() -> None:
    total_sent = total_rollouts = total_steps = total_bad = 0
    for i, (task, mode, n) in enumerate([("drawer", "torque", 10_000), ("reach", "cartesian", 40_000),
                                         ("drawer", "cartesian", 30_000), ("reach", "joint", 20_000)]):
        audit, sent, rollouts = _run(task, mode, n, seed0=10_000 * (i + 1))
        total_sent, total_rollouts = total_sent + sent, total_rollouts + rollouts
        total_steps, total_bad = total_steps + audit.steps, total_bad + audit.violations
    print(f"adversarial: {total_sent} commands, {total_rollouts} randomized rollouts, {total_steps} audited "
          f"control steps, {total_bad} out-of-limit commands reached ctrl")
    assert total_sent >= 100_000 and total_rollouts >= 1000 and total_bad == 0


def test_breach_stops_the_robot_and_next_trial_resets() -> None:
    spec = spec_for("reach", "enarm")
    st = make_station(spec, 0)

    class FarAway:
        def reset(self, obs, feedback=None) -> None:
            pass

        def act(self, obs) -> np.ndarray:
            return np.array([3.0, 0.0, 1.5, 0.0, 0.0])  # far outside the workspace box

    rec = st.run_trial(TrialRequest("far", 0, 3, Candidate("far")), policy=FarAway())
    assert rec.outcome == "unsafe" and not rec.pass_at_k
    assert rec.safety_events[0].kind in ("workspace", "joint_velocity", "joint_position")
    assert rec.clamps > 0
    nxt = st.run_trial(TrialRequest("next", 0, 4, Candidate("c")))
    assert nxt.outcome in ("success", "failure")
