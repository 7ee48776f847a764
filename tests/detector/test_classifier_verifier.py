"""The classifier verifier (done.verifier=classifier): a frozen detector judges attempts from camera frames.

Real parts: MuJoCo rendering of the station's camera, the shipped drawer detector, the spec checks of the
CLI (exit 2), the loop's integrity check (exit 3), MLflow on SQLite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from enpire import PROJECT_ROOT
from enpire.detector.judge import HoldJudge, decision_frame, frames_needed
from enpire.detector.model import DetectorConfig, DetectorNet, load_detector, save_detector
from enpire.fleet.stations import make_station
from enpire.records import Candidate, TrialRequest
from enpire.spec import fingerprint, load_spec
from enpire.spec.errors import SpecError
from tests.fleet.support import ScriptedAgent, migrated_store, params_proposal, run, spec_of, store

__all__ = ["migrated_store", "store"]
SHIPPED = PROJECT_ROOT / "enpire/tasks/drawer/detector.pt"


def tiny_detector(path: Path, task: str = "drawer", bias: float | None = None, seed: int = 0) -> Path:
    """A small untrained detector (seeded); `bias` fixes its output (+10: always success, -10: never)."""
    torch.manual_seed(seed)
    net = DetectorNet(DetectorConfig(task=task, camera="front", image_size=32, channels=(4, 8), hidden=8))
    if bias is not None:
        with torch.no_grad():
            for p in net.parameters():
                p.zero_()
            net.head[-1].bias.fill_(bias)
    return save_detector(path, net, {"note": "test detector"})


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
    return subprocess.run([sys.executable, "-m", "enpire", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


# -- the hold rule and determinism ------------------------------------------------------------------
def test_the_hold_counts_frame_periods_so_a_decision_never_precedes_the_held_time() -> None:
    assert frames_needed(0.5, 10.0) == 6  # 6 frames span 0.5 s; 5 would span 0.4 s
    assert frames_needed(1.0, 10.0) == 11
    judge = HoldJudge(0.5, 6)
    assert not any(judge.see(p) for p in [0.9] * 5 + [0.1] + [0.9] * 5)  # interrupted: starts again
    assert judge.see(0.9)  # the sixth in a row
    assert decision_frame([0.1, 0.6, 0.6, 0.4, 0.6, 0.6, 0.6], 0.5, 3) == 6


def test_the_verdict_of_a_frame_sequence_is_deterministic(tmp_path: Path) -> None:
    spec = load_spec(["task=drawer", "video.enabled=false"])
    frames = []
    import functools

    from enpire.detector.verifier import FrameCollector

    station = make_station(spec, verifier=functools.partial(FrameCollector, camera="drawer_side", image_size=64,
                                                            rate_hz=10.0))
    station.run_trial(TrialRequest("t0", 0, 3, Candidate("base")))
    got = station._verifier.take()  # type: ignore[attr-defined]
    station.close()
    frames = got["frames"]
    assert len(frames) > 20 and frames.dtype == np.uint8
    a, b = load_detector(SHIPPED), load_detector(SHIPPED)
    p1, p2 = a.net.probabilities(frames), b.net.probabilities(frames)
    assert np.array_equal(p1, p2)  # bit for bit, from two loads of the file
    assert np.array_equal(p1, a.net.probabilities(frames.copy()))
    needed = frames_needed(spec.done.hold_s, a.config.rate_hz)
    assert decision_frame(p1, 0.5, needed) == decision_frame(p2, 0.5, needed)


# -- on a station: the verdict from frames, the state verifier as the shadow --------------------------
def test_a_detector_that_always_says_success_is_caught_by_the_shadow_and_hidden_from_agents(
        store: list[str], tmp_path: Path) -> None:
    weights = tiny_detector(tmp_path / "yes.pt", bias=10.0)
    spec = spec_of(*store, "budget=smoke", "budget.iterations=2", "done.verifier=classifier",
                   f"done.classifier.weights={weights}")
    station = make_station(spec)
    rec = station.run_trial(TrialRequest("t0", 0, 1, Candidate("hold", "params", {})))
    station.close()
    assert rec.outcome == "success" and "detector saw success" in rec.reason
    assert rec.robot_seconds == pytest.approx(0.6)  # its 6th frame at 10 Hz (control step 30) ends the attempt
    assert rec.shadow == {"verifier": "predicate", "pass_at_1": False, "pass_at_k": False, "success_attempt": None}

    agent = ScriptedAgent([params_proposal(spec, trials=2)])
    code, summary, _ = run(spec, tmp_path / "run", agents=[agent])
    assert code == 0
    assert float(summary["verifier_agreement"]) < 0.5 and int(summary["false_successes"]) >= 2
    assert float(summary["false_success_rate"]) == pytest.approx(1.0)
    seen = repr(agent.observed) + repr(agent.states)
    assert "shadow" not in seen and "true_success" not in seen  # the agent never sees the state's verdict
    client = MlflowClient(tracking_uri=store[0].split("=", 1)[1])
    exp = client.get_experiment_by_name(spec.experiment_name)
    its = client.search_runs([exp.experiment_id], "tags.`enpire.kind` = 'iteration'")
    assert its and all(r.data.metrics["true_success_rate"] == 0.0 for r in its)
    sess = client.search_runs([exp.experiment_id], "tags.`enpire.kind` = 'session'")[0]
    assert sess.data.metrics["verifier_agreement"] == float(summary["verifier_agreement"])

    from enpire.report.__main__ import build_report
    from enpire.report.data import load_sessions

    report = build_report(client, load_sessions(client), tmp_path / "report", stills=False).read_text()
    assert "true pass@1 (state verifier)" in report  # verified beside true success, per iteration
    assert "### Verifier: the detector against the state verifier" in report


def test_agents_get_no_simulator_state_of_trials_a_camera_judged(store: list[str], tmp_path: Path) -> None:
    weights = tiny_detector(tmp_path / "no.pt", bias=-10.0)
    spec = spec_of(*store, "budget=smoke", "budget.iterations=2", "done.verifier=classifier",
                   f"done.classifier.weights={weights}")
    agent = ScriptedAgent([params_proposal(spec, trials=2)])
    code, _, _ = run(spec, tmp_path / "run", agents=[agent])
    assert code == 0
    failures = [f for it in agent.observed for f in it.failures]
    assert failures and all(f["final_state"] == {} for f in failures)
    assert any("detector saw" in f["reason"] for f in failures)
    assert "drawer_opening" not in repr(agent.observed)  # a real station would not know it either


def test_the_weights_file_is_part_of_done_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tiny_detector(tmp_path / "d.pt")
    monkeypatch.chdir(tmp_path)  # a relative path is made absolute once, where the session is launched
    doc = load_spec(["task=drawer", "done.verifier=classifier", "done.classifier.weights=d.pt"]).as_dict()
    assert doc["done"]["classifier"]["weights"] == str(weights)
    assert str(weights) in fingerprint.judged_files(doc)["done"]
    monkeypatch.chdir(PROJECT_ROOT)  # a station process elsewhere fingerprints the same file
    assert fingerprint.done_sha256(doc["done"], doc["task"]) == load_spec(
        ["task=drawer", "done.verifier=classifier", f"done.classifier.weights={weights}"]).fingerprints.done_sha256
    before = fingerprint.done_sha256(doc["done"], doc["task"])
    tiny_detector(weights, seed=1)  # other weights, same shape
    assert fingerprint.done_sha256(doc["done"], doc["task"]) != before


def test_weights_changed_under_a_running_session_exit_3(store: list[str], tmp_path: Path) -> None:
    weights = tiny_detector(tmp_path / "d.pt", bias=-10.0)
    spec = spec_of(*store, "budget=smoke", "budget.iterations=10", "done.verifier=classifier",
                   f"done.classifier.weights={weights}")

    def tamper(_summary: object) -> None:  # a detector that passes everything, swapped in mid-session
        tiny_detector(weights, bias=10.0)

    agent = ScriptedAgent([params_proposal(spec, trials=1)])
    code, summary, _ = run(spec, tmp_path / "run", agents=[agent], on_iteration=tamper)
    assert code == 3
    client = MlflowClient(tracking_uri=store[0].split("=", 1)[1])
    exp = client.get_experiment_by_name(spec.experiment_name)
    session = client.search_runs([exp.experiment_id], "tags.`enpire.kind` = 'session'")[0]
    assert session.data.tags["enpire.integrity_breach"] == "done"
    assert int(summary["iterations"]) >= 1  # what was recorded before the breach stays


# -- bad files: exit 2 naming the key, nothing run -----------------------------------------------------
def bad_weights(path: Path, case: str) -> Path:
    if case == "wrong_shape":
        tiny_detector(path)
        blob = torch.load(path, weights_only=True)
        blob["state_dict"]["head.1.weight"] = torch.zeros(3, 3)
        torch.save(blob, path)
    elif case == "not_a_detector":
        path.write_bytes(b"not a torch file")
    elif case == "other_task":
        tiny_detector(path, task="lift")
    return path


EXPECTED = {"missing": "no weights file", "wrong_shape": "wrong shape", "not_a_detector": "not a detector",
            "other_task": "trained on task 'drawer', not on 'lift'"}


def test_a_weights_file_of_the_wrong_shape_exits_2_naming_the_key_and_nothing_runs(tmp_path: Path) -> None:
    path = bad_weights(tmp_path / "bad.pt", "wrong_shape")
    done = cli("task=drawer", "done.verifier=classifier", f"done.classifier.weights={path}",
               f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", "budget=smoke", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "done.classifier.weights" in done.stderr and EXPECTED["wrong_shape"] in done.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing ran, no run was created


@pytest.mark.parametrize("case", ["missing", "not_a_detector", "other_task"])
def test_a_bad_weights_file_is_a_spec_error_naming_the_key(tmp_path: Path, case: str) -> None:
    path = bad_weights(tmp_path / "bad.pt", case)
    with pytest.raises(SpecError) as error:
        load_spec(["task=drawer", "done.verifier=classifier", f"done.classifier.weights={path}"])
    (problem,) = error.value.problems  # what the CLI prints before exiting 2 (the case above)
    assert problem.path == "done.classifier.weights" and EXPECTED[case] in problem.expected
