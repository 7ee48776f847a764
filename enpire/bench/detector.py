"""`detector`: the learned success detector against the state verifier, per task, and in a session.

For drawer and lift: `python -m enpire.detector train` as a user runs it (240 labelled trials, 15 epochs; quick:
80 trials, 8 epochs), with its held-out trial accuracy, precision and recall (95% Wilson lower bounds beside
them), frame accuracy, and the seconds spent collecting and training on this machine. Then a session on drawer
judged by the detector just trained (`done.verifier=classifier fleet=2`, default budget): whether it reached
/done, its agreement with the shadow state verdict, the false-success rate, and the share of the successes
credited to kept candidates that the state verifier denies (how often the search agent keeps a candidate the
detector is fooled by). Metric keys: `<task>.trial_accuracy` ..., `session.verifier_agreement` ...
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from enpire.bench import bench
from enpire.bench.sessions import number, run_quiet

TASKS = ("drawer", "lift")


def train_one(task: str, out: Path, trials: int, epochs: int) -> dict[str, float]:
    from enpire.detector.__main__ import train

    args = argparse.Namespace(overrides=[f"task={task}"], trials=trials, heldout=0.3, epochs=epochs, seed=0,
                              camera=None, size=64, rate_hz=10.0, jitter=False, device="auto", out=str(out),
                              tracking_uri=None, no_mlflow=True)
    result = train(args)
    m = result["metrics"]
    figures = {}
    for k in ("accuracy", "precision", "recall"):
        v = m["trials"][k]
        figures[f"{task}.trial_{k}"] = float(v["value"]) if v["value"] is not None else float("nan")
        figures[f"{task}.trial_{k}_lcb"] = float(v["ci95"][0])
    figures.update({f"{task}.heldout_trials": float(m["trials"]["accuracy"]["n"]),
                    f"{task}.false_success": float(m["trials"]["false_success"]),
                    f"{task}.false_failure": float(m["trials"]["false_failure"]),
                    f"{task}.frame_accuracy": float(m["frames"]["value"]),
                    f"{task}.collect_s": float(result["data"]["collect_seconds"]),
                    f"{task}.train_s": float(result["training"]["train_seconds"])})
    return figures


@bench("detector", "success detector vs the state verifier: held-out accuracy per task, agreement in a session")
def detector(quick: bool) -> dict[str, float]:
    trials, epochs = (80, 8) if quick else (240, 15)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="enpire-bench-detector-") as tmp:
        for task in TASKS:
            out.update(train_one(task, Path(tmp) / task, trials, epochs))
        weights = Path(tmp) / "drawer" / "detector.pt"
        s = run_quiet(["task=drawer", "done.verifier=classifier", f"done.classifier.weights={weights}", "fleet=2",
                       "video.enabled=false"], Path(tmp))
    out["session.reached_done"] = float(s.get("reached_done") == "true")
    for key in ("verifier_agreement", "false_success_rate", "false_failure_rate", "kept_false_success_share",
                "done_true_success_rate", "shadow_trials", "robot_s_to_done", "wall_s"):
        out[f"session.{key}"] = number(s, key)
    return out
