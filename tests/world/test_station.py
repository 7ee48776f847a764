"""Station behaviour: verifier integrity, crashes, faulty resets, pass@k, recordings, gym, pickling."""

from __future__ import annotations

import multiprocessing as mp
import shutil
from pathlib import Path

import numpy as np
import pytest

from enpire import PROJECT_ROOT
from enpire.fleet.stations import make_station
from enpire.records import Candidate, TrialRequest
from enpire.spec import IntegrityError
from enpire.spec import fingerprint as fp
from enpire.spec.frozen import freeze, thaw
from tests.world.conftest import spec_for


def _req(seed: int, **kw) -> TrialRequest:
    return TrialRequest(f"t{seed}", 0, seed, Candidate("c", params=kw.pop("params", {})), **kw)


def test_verifier_refuses_after_done_config_changed() -> None:
    st = make_station(spec_for("reach"), 0)
    doc = thaw(st.spec.resolved["done"])
    doc["predicate"]["conditions"][0]["value"] = 0.5  # loosen the criterion under a running station
    st._verifier._fingerprint = lambda: fp.done_sha256(freeze(doc))
    with pytest.raises(IntegrityError):
        st.run_trial(_req(0))


def test_verifier_refuses_after_its_source_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st = make_station(spec_for("reach"), 0)
    assert st.run_trial(_req(0)).outcome in ("success", "failure")
    patched = tmp_path / "verifier.py"
    shutil.copy(PROJECT_ROOT / "enpire/world/verifier.py", patched)
    patched.write_text(patched.read_text().replace("return self._met", "return True"))
    monkeypatch.setattr(fp, "DONE_SOURCES", (str(patched),))
    with pytest.raises(IntegrityError):
        st.run_trial(_req(1))


def test_policy_crash_is_an_outcome_and_the_station_stays_usable() -> None:
    st = make_station(spec_for("reach"), 0)

    class Boom:
        def reset(self, obs, feedback=None) -> None:
            pass

        def act(self, obs):
            raise RuntimeError("policy bug")

    rec = st.run_trial(_req(0), policy=Boom())
    assert rec.outcome == "crash" and "policy bug" in rec.error
    assert st.run_trial(_req(1)).outcome in ("success", "failure")


def test_failed_resets_mark_the_station_faulty(monkeypatch: pytest.MonkeyPatch) -> None:
    st = make_station(spec_for("reach"), 0)
    monkeypatch.setattr(st.scene.task, "reset_problems", lambda physics, init: ["target fell over"])
    spec = st.spec
    outcomes = [st.run_trial(_req(s)).outcome for s in range(spec.task.reset.faulty_after + 1)]
    assert outcomes == ["reset_failed"] * len(outcomes)
    assert st.faulty


def test_pass_at_k_retry_is_told_why_and_continues_from_the_state() -> None:
    spec = spec_for("reach")
    st = make_station(spec, 0)
    seen = []

    class LazyThenGood:
        def reset(self, obs, feedback=None) -> None:
            seen.append((feedback, obs["ee_pos"].copy()))

        def act(self, obs):
            if len(seen) == 1:  # first attempt: stay put
                return np.r_[seen[0][1], 0.0, 0.0]
            return np.r_[obs["target_pos"], 0.0, 0.0]

    rec = st.run_trial(_req(2), policy=LazyThenGood())
    assert rec.attempts >= 2 and seen[1][0] is not None and seen[1][0].attempt == 2
    assert "ee_to_target" in seen[1][0].reason
    assert np.linalg.norm(seen[1][1] - seen[0][1]) < 0.05  # no reset between attempts
    assert not rec.pass_at_1 and rec.outcome != "success"


def test_trial_record_telemetry_and_trajectory(tmp_path: Path) -> None:
    st = make_station(spec_for("reach"), 0)
    rec = st.run_trial(_req(0, record_trajectory=True, out_dir=str(tmp_path)))
    assert rec.robot_seconds == pytest.approx(rec.steps * st.spec.control_dt)
    assert set(rec.final_state) == {"ee_to_target", "ee_speed"}
    data = np.load(rec.trajectory)
    assert data["actions"].shape == (rec.steps, 5) and data["qpos"].shape[0] == rec.steps
    assert rec.to_dict()["outcome"] == rec.outcome


def _build_in_worker(q) -> None:
    from enpire.fleet.stations import make_station

    st = make_station(spec_for("reach"), 3)
    q.put(st.run_trial(_req(5)).to_dict())


def test_spec_pickles_and_rebuilds_an_identical_station() -> None:
    import pickle

    spec = pickle.loads(pickle.dumps(spec_for("reach")))
    a = make_station(spec, 0).run_trial(_req(5)).to_dict()
    b = make_station(spec_for("reach"), 0).run_trial(_req(5)).to_dict()
    assert (a["outcome"], a["steps"], a["final_state"]) == (b["outcome"], b["steps"], b["final_state"])


@pytest.mark.slow
def test_station_builds_in_a_worker_process_and_is_deterministic() -> None:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_build_in_worker, args=(q,))
    p.start()
    remote = q.get(timeout=120)
    p.join(30)
    local = make_station(spec_for("reach"), 3).run_trial(_req(5)).to_dict()
    for key in ("outcome", "steps", "final_state", "clamps"):
        assert remote[key] == local[key]


def test_gym_wrapper_runs_a_task() -> None:
    import gymnasium as gym

    import enpire.world.gym_env  # noqa: F401

    env = gym.make("enpire/Reach-v0")
    obs, info = env.reset(seed=0)
    assert "target_pos" in obs
    for _ in range(5):
        obs, reward, _terminated, _truncated, info = env.step(np.r_[obs["target_pos"], 0.0, 0.0])
    assert np.isfinite(reward) and "ee_to_target" in info["state"]
    env.close()
