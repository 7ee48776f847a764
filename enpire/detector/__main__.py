"""python -m enpire.detector train task=drawer [overrides] [options]: train a frozen success detector.

Collects labelled frames in simulation (the state verifier labels them), trains the detector with Lightning,
reports held-out precision / recall / accuracy with 95% intervals, writes `detector.pt` and its model card
`detector.json`, and logs all of it to MLflow (experiment `enpire/<task>/detector`, the model with a
signature). Use the weights with `done.verifier=classifier done.classifier.weights=<out>/detector.pt`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

EPILOG = """examples:
  python -m enpire.detector train task=drawer
  python -m enpire.detector train task=lift --trials 300 --jitter --out outputs/detectors/lift
  python -m enpire task=drawer done.verifier=classifier done.classifier.weights=outputs/detectors/drawer/detector.pt

exit codes: 0 trained (the card says how well), 2 invalid overrides or options, 1 anything else
docs: docs/verifiers.md"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m enpire.detector", description=__doc__.split("\n\n")[1],
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="collect labelled frames, train, evaluate, write and log a detector",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("overrides", nargs="*", help="Hydra overrides of the session config (task=drawer, robot=...)")
    t.add_argument("--trials", type=int, default=240, help="labelled trials to collect (default 240)")
    t.add_argument("--heldout", type=float, default=0.3, help="fraction of trials held out (default 0.3)")
    t.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    t.add_argument("--seed", type=int, default=0, help="seed of the candidates, trial seeds, split and training")
    t.add_argument("--camera", default=None,
                   help="camera to judge from (default: the task's detector_camera, else its default camera)")
    t.add_argument("--size", type=int, default=64, help="square frame size in pixels (default 64)")
    t.add_argument("--rate-hz", type=float, default=10.0, help="frames per second of robot time (default 10)")
    t.add_argument("--jitter", action="store_true", help="move the camera and change the lights between trials")
    t.add_argument("--device", default="auto", help="auto (cuda when present) | cpu | cuda")
    t.add_argument("--out", default=None, help="output folder (default outputs/detectors/<task>)")
    t.add_argument("--tracking-uri", default=None, help="MLflow store (default: the config's tracking.uri)")
    t.add_argument("--no-mlflow", action="store_true", help="write the files only")
    return p


def train(args: argparse.Namespace) -> dict[str, Any]:
    from enpire.detector.collect import collect
    from enpire.detector.model import DetectorConfig
    from enpire.detector.train import TrainOptions, fit, model_card, write
    from enpire.spec.load import load_spec
    from enpire.world.scene import build_scene

    spec = load_spec(list(args.overrides))
    task = spec.task.name
    task_obj = build_scene(spec).task
    camera = args.camera or task_obj.detector_camera or task_obj.default_camera
    config = DetectorConfig(task=task, camera=camera, image_size=args.size, rate_hz=args.rate_hz)
    t0 = time.perf_counter()

    def progress(i: int, n: int) -> None:
        if i % 40 == 0 or i == n:
            print(f"collect {i}/{n}", file=sys.stderr, flush=True)

    trials = collect(spec, args.trials, args.seed, camera, args.size, args.rate_hz, args.jitter, progress)
    collect_s = time.perf_counter() - t0
    opts = TrainOptions(epochs=args.epochs, heldout=args.heldout, seed=args.seed, device=args.device)
    net, result = fit(trials, config, spec.done.hold_s, opts)
    options = {"seed": args.seed, "jitter": bool(args.jitter), "heldout": args.heldout, "epochs": args.epochs,
               "overrides": list(args.overrides)}
    card = model_card(config, trials, result, collect_s, options)
    out = Path(args.out) if args.out else Path("outputs") / "detectors" / task
    path, card = write(out, net, card)
    if not args.no_mlflow:
        from enpire.detector.tracking import log_detector

        card["mlflow_run_id"] = log_detector(args.tracking_uri or spec.tracking.uri, task, path, card, net)
    return {**card, "weights": str(path), "card": str(path.with_name("detector.json"))}


def summary_lines(result: dict[str, Any]) -> str:
    m, tr = result["metrics"]["trials"], result["training"]
    lines = {"weights": result["weights"], "weights_sha256": result["weights_sha256"], "card": result["card"],
             "heldout_trials": tr["heldout_trials"]}
    for k in ("accuracy", "precision", "recall"):
        v = m[k]
        lines[f"trial_{k}"] = f"{v['value']} (95% CI {v['ci95'][0]}-{v['ci95'][1]}, n={v['n']})"
    d = result["metrics"]["decision"]
    lines["decision"] = (f"P >= {d['threshold']:g}, {d['extra_frames']} extra frame(s) (validation accuracy "
                         f"{d['validation_accuracy']:.4f} on {d['validation_trials']} trials)")
    lines.update(false_success=m["false_success"], false_failure=m["false_failure"],
                 frame_accuracy=result["metrics"]["frames"]["value"], collect_s=result["data"]["collect_seconds"],
                 train_s=tr["train_seconds"], device=tr["device"])
    if "mlflow_run_id" in result:
        lines["mlflow_run_id"] = result["mlflow_run_id"]
    return "\n".join(f"{k}: {v}" for k, v in lines.items())


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("lightning", "lightning.pytorch", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    from enpire.spec.errors import EXIT_INVALID_SPEC, SpecError

    if args.trials < 4 or not 0 < args.heldout < 1 or args.epochs < 1 or args.size < 16 or args.rate_hz <= 0:
        print("error: --trials >= 4, 0 < --heldout < 1, --epochs >= 1, --size >= 16 and --rate-hz > 0",
              file=sys.stderr)
        return EXIT_INVALID_SPEC
    try:
        result = train(args)
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_SPEC
    print(summary_lines(result))
    if os.environ.get("ENPIRE_DETECTOR_JSON"):
        Path(os.environ["ENPIRE_DETECTOR_JSON"]).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
