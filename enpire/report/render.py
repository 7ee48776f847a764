"""Render a video of a task's scripted baseline: one trial, written as mp4.

    python -m enpire.report.render task=drawer [robot=jaco] [--out PATH] [--seed N] [--png PATH]
        [--param NAME=VALUE ...] [other Hydra overrides]

Runs the verified reset and the baseline policy (defaults of conf/policy/<task>_scripted.yaml,
overridden by --param) on one station with video recording on; prints the outcome and the
path. --png also writes the middle frame as an image for a quick look.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m enpire.report.render", description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. task=drawer robot=jaco")
    ap.add_argument("--out", default=None, help="mp4 path (default outputs/videos/<task>_<robot>_seed<N>.mp4)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--png", default=None, help="also write the middle frame here")
    ap.add_argument("--param", action="append", default=[], help="policy parameter NAME=VALUE")
    args = ap.parse_args(argv)

    import imageio.v2 as imageio

    from enpire.fleet.stations import make_station
    from enpire.records import Candidate, TrialRequest
    from enpire.spec import SpecError, load_spec

    try:
        spec = load_spec(args.overrides)
    except SpecError as e:
        print(e, file=sys.stderr)
        return 2
    params = {k: float(v) for k, v in (p.split("=", 1) for p in args.param)}
    out = Path(args.out or f"outputs/videos/{spec.task.name}_{spec.robot.name}_seed{args.seed}.mp4")
    station = make_station(spec, 0)
    req = TrialRequest(trial_id=out.stem, iteration=0, seed=args.seed, candidate=Candidate("render", params=params),
                       record_video=True, out_dir=str(out.parent))
    rec = station.run_trial(req)
    if rec.video and Path(rec.video) != out:
        Path(rec.video).replace(out)
    print(f"outcome: {rec.outcome}\nreason: {rec.reason}\nvideo: {out}\nrobot_seconds: {rec.robot_seconds:.2f}")
    if args.png:
        frames = imageio.mimread(str(out), memtest=False)
        imageio.imwrite(args.png, frames[len(frames) // 2])
        print(f"png: {args.png}")
    return 0 if rec.outcome != "crash" else 1


if __name__ == "__main__":
    raise SystemExit(main())
