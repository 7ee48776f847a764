"""python -m enpire.replay TRIAL_ID [--session SESSION_ID] [--out x.mp4] [--render-only]

Replays a recorded trial by id, from MLflow alone: its session's spec (`spec/resolved_spec.json`), candidate and
seed are run again on a fresh station (enpire.fleet.stations.make_station) and the new trajectory is compared
with the recorded one array by array, bit for bit (the simulation is deterministic); `--out` renders the
recorded trajectory to an mp4 (at video.fps, video.width x video.height). Exit 0 identical (or rendered with
--render-only), 1 different, 2 no such trial or bad arguments. docs/data.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from enpire.data.episodes import STEP_KEYS, Episode

log = logging.getLogger(__name__)
DEFAULT_URI = "sqlite:///outputs/mlflow.db"


def session_spec(uri: str, session_id: str) -> Any:
    """The session's spec as launched (its stored resolved spec), every trajectory recorded, no frames."""
    from enpire.data.store import session_spec_doc
    from enpire.spec.load import spec_from_config
    from enpire.spec.model import RecordSpec

    doc = session_spec_doc(uri, session_id)
    doc["tracking"]["uri"], doc["resume"] = uri, None
    spec = spec_from_config(doc)
    return dataclasses.replace(spec, record=RecordSpec("all", 0.0, spec.record.max_mb))


def rerun(spec: Any, ep: Episode, out_dir: str | Path) -> Episode:
    """The recorded trial again: its candidate and seed on a fresh station with the same index."""
    from enpire.fleet.stations import make_station
    from enpire.records import Candidate, TrialRequest

    m = ep.meta
    if m.get("done_sha256") and m["done_sha256"] != spec.fingerprints.done_sha256:
        log.warning("replay: the judged code changed since trial %s was recorded (done_sha256 %s -> %s); it may "
                    "not replay identically", ep.trial_id, m["done_sha256"][:12], spec.fingerprints.done_sha256[:12])
    station = make_station(spec, int(m["station"]))
    try:
        rec = station.run_trial(TrialRequest(ep.trial_id, int(m["iteration"]), int(m["seed"]),
                                             Candidate(**m["candidate"]), record_trajectory=True,
                                             out_dir=str(out_dir)))
    finally:
        station.close()
    if not rec.trajectory:
        raise RuntimeError(f"replay of {ep.trial_id}: the trial ran no steps ({rec.outcome}: {rec.reason})")
    return Episode.load(rec.trajectory)


def differences(a: Episode, b: Episode) -> list[str]:
    """Where two trajectories differ (empty: identical bit for bit), per array and in the verdict."""
    out = []
    keys = sorted(k for k in set(a.steps) | set(b.steps) if k in STEP_KEYS or k.startswith("obs/"))
    for k in keys:
        x, y = a.steps.get(k), b.steps.get(k)
        if x is None or y is None:
            out.append(f"{k}: only in {'the replay' if x is None else 'the recording'}")
        elif x.shape != y.shape:
            out.append(f"{k}: shape {x.shape} recorded, {y.shape} replayed")
        elif x.tobytes() != y.tobytes():
            rows = np.flatnonzero((x != y).reshape(len(x), -1).any(axis=1))
            out.append(f"{k}: differs from step {int(rows[0]) if len(rows) else '?'} ({len(rows)} steps)")
    for k in ("outcome", "steps", "attempts", "success_attempt"):
        if a.meta.get(k) != b.meta.get(k):
            out.append(f"{k}: {a.meta.get(k)!r} recorded, {b.meta.get(k)!r} replayed")
    return out


def render(spec: Any, ep: Episode, out: Path) -> str:
    """The recorded trajectory as an mp4 at video.fps (enpire.world.replay's renderer)."""
    from enpire.world.replay import ReplayRenderer

    every = max(1, round(ep.fps / spec.video.fps))
    s = ep.steps
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "replay.npz"
        np.savez(path, qpos=s["qpos"][::every], mocap_pos=s["mocap_pos"][::every],
                 mocap_quat=s["mocap_quat"][::every], body_pos=ep.once["body_pos"], body_quat=ep.once["body_quat"],
                 step=s["step"][::every], fps=ep.fps / every, camera=np.array(ep.meta.get("camera") or "front"))
        renderer = ReplayRenderer(spec)
        try:
            return renderer.render(path, out)
        finally:
            renderer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enpire.replay", description=__doc__.splitlines()[0])
    parser.add_argument("trial", metavar="TRIAL_ID", help="a recorded trial's id, e.g. i0003-t001")
    parser.add_argument("--session", help="session run id (needed when several sessions recorded that trial id)")
    parser.add_argument("--out", type=Path, help="render the recorded trajectory to this mp4")
    parser.add_argument("--render-only", action="store_true", help="render (--out) without re-running the trial")
    parser.add_argument("--tracking-uri", default=DEFAULT_URI, help="MLflow store (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if args.render_only and not args.out:
        print("enpire.replay: --render-only needs --out x.mp4", file=sys.stderr)
        return 2
    from enpire.data.store import download_trial, find_trial

    try:
        session_id, where = find_trial(args.tracking_uri, args.trial, args.session)
    except (LookupError, ValueError) as error:
        print(f"enpire.replay: {error}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        recorded = download_trial(args.tracking_uri, where, Path(tmp) / "recorded")
        spec = session_spec(args.tracking_uri, session_id)
        code = 0
        if not args.render_only:
            replayed = rerun(spec, recorded, Path(tmp) / "replayed")
            diff = differences(recorded, replayed)
            if diff:
                print(f"replay {args.trial}: DIFFERENT from the recording ({len(diff)} differences)")
                for line in diff:
                    print(f"  {line}")
                code = 1
            else:
                print(f"replay {args.trial}: identical to the recording, bit for bit ({recorded.length} steps, "
                      f"outcome {recorded.meta['outcome']}, session {session_id})")
        if args.out:
            print(f"rendered {render(spec, recorded, args.out)}")
    return code


if __name__ == "__main__":
    sys.exit(main())
