"""`python -m enpire.track.render_pending FILE [--no-wait]`: render a session's pending videos into MLflow.

FILE is a session's `videos_pending.jsonl` (enpire.track.videos; its path is the session run's tag
`enpire.videos.file`). The MLflow writer starts this detached after a session's summary
(`video.render=background`); `python -m enpire.report --videos` runs the same code in-process. For each
queued trial not rendered yet: render its replay, log it as `videos/<trial>.mp4` of its iteration run,
fill `video_artifact` in that run's `trials.jsonl`, delete the replay, and record it in FILE. The
session run's tag `enpire.videos` reads `rendering` meanwhile, then `done` (or `pending` when some are
left: the session is still running, or rendering broke), `enpire.videos.pending` the count left.

One renderer works on a file at a time (a lock beside it): a second one waits for the first and then
finds nothing left, or with --no-wait exits at once. Runs at a lower CPU priority (nice +10) so a
session started meanwhile keeps its robots' pace.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from enpire.track import videos as vids
from enpire.track.retry import with_retry
from enpire.track.videos import IterationVideos, PendingVideo, PendingVideos

log = logging.getLogger(__name__)


def _fill_trial_rows(client: Any, run_id: str, rendered: dict[str, str], stats: dict[str, Any]) -> None:
    """Set `video_artifact` of the rendered trials in the iteration's trials.jsonl (logged again)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(with_retry(lambda: client.download_artifacts(run_id, "trials.jsonl", tmp), stats))
        except Exception as error:  # noqa: BLE001 - the videos are logged; the table just does not point at them
            log.warning("trials.jsonl of %s not updated: %s", run_id, error)
            return
        rows = [json.loads(line) for line in local.read_text().splitlines() if line.strip()]
        for row in rows:
            if row.get("trial_id") in rendered:
                row["video_artifact"] = rendered[row["trial_id"]]
        out = Path(tmp) / "rows" / "trials.jsonl"
        out.parent.mkdir()
        out.write_text("".join(json.dumps(row, default=str) + "\n" for row in rows))
        with_retry(lambda: client.log_artifact(run_id, str(out)), stats)


def render_pending(path: str | Path, wait: bool = True) -> dict[str, Any]:
    """Render what FILE has left; returns counts (`busy: True` when wait=False met another renderer).

    A replay that fails to render while others render is broken: it is recorded as failed and deleted.
    When none renders (no GL, say), nothing is given up: the replays stay for a later try."""
    from mlflow.entities import RunTag
    from mlflow.tracking import MlflowClient

    from enpire.spec.load import spec_from_config

    pending = PendingVideos(path)
    with pending.lock(wait=wait) as got:
        if not got:
            return {"busy": True}
        state = pending.read()
        client = MlflowClient(tracking_uri=state.tracking_uri)
        stats: dict[str, Any] = {}

        def tag(run_id: str, tags: dict[str, str]) -> None:
            with_retry(lambda: client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()]), stats)

        todo = state.todo
        rendered_n, failures = 0, []  # failures: (video, why)
        if todo:
            tag(state.session_run_id, {vids.TAG: "rendering", vids.TAG_PENDING: str(len(todo))})
            by_run: dict[str, list[PendingVideo]] = {}
            for video in todo:
                by_run.setdefault(video.run_id, []).append(video)
            videos = IterationVideos(spec_from_config(state.spec))
            left = len(todo)
            try:
                for run_id, items in by_run.items():
                    if videos.disabled:
                        break
                    done, failed = _render_run(client, pending, videos, run_id, items, stats)
                    rendered_n += done
                    failures += failed
                    left -= done
                    tag(state.session_run_id, {vids.TAG_PENDING: str(left)})
            finally:
                videos.close()
            if rendered_n and failures:  # rendering works, so these replays are broken: give them up
                for video, why in failures:
                    pending.mark(video.trial_id, error=why)
                    Path(video.replay).unlink(missing_ok=True)
            elif failures:
                log.error("no video rendered (%s); the replays are kept: set MUJOCO_GL=egl or osmesa and run "
                          "python -m enpire.track.render_pending %s", failures[0][1], pending.path)
        state = pending.read()
        for run_id in {v.run_id for v in todo}:  # each iteration run touched: where its videos stand now
            mine = [v.trial_id for v in state.videos if v.run_id == run_id]
            tag(run_id, {vids.TAG: "pending" if any(v.run_id == run_id for v in state.todo)
                         else "done" if any(t in state.rendered for t in mine) else "failed"})
        left_n = len(state.todo)
        final = "done" if state.closed and not left_n else "pending"
        tag(state.session_run_id, {vids.TAG: final, vids.TAG_PENDING: str(left_n),
                                   "enpire.videos.rendered": str(len(state.rendered)),
                                   "enpire.videos.failed": str(len(state.failed))})
        return {"rendered": rendered_n, "failed": len(failures) if rendered_n else 0, "left": left_n, "state": final}


def _render_run(client: Any, pending: PendingVideos, videos: IterationVideos, run_id: str,
                items: list[PendingVideo], stats: dict[str, Any]) -> tuple[int, list[tuple[PendingVideo, str]]]:
    """Render one iteration run's queued videos, log them, record each rendered one in the pending file and
    delete its replay; (how many rendered, [(video, why) that did not])."""
    failed: list[tuple[PendingVideo, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "videos"
        rendered: dict[str, str] = {}
        for video in items:
            if not Path(video.replay).is_file():  # nothing to keep for a later try
                pending.mark(video.trial_id, error=f"replay {video.replay} is gone")
                continue
            name, why = videos.render_one(video.trial_id, video.replay, folder)
            if name is not None:
                rendered[video.trial_id] = video.artifact
            else:
                failed.append((video, why or "?"))
        if not rendered:
            return 0, failed
        with_retry(lambda: client.log_artifacts(run_id, str(folder), "videos"), stats)
        _fill_trial_rows(client, run_id, rendered, stats)
    for video in items:
        if video.trial_id in rendered:
            pending.mark(video.trial_id, artifact=rendered[video.trial_id])
            Path(video.replay).unlink(missing_ok=True)
    log.info("iteration %d: %d video(s) logged to run %s", items[0].iteration, len(rendered), run_id)
    return len(rendered), failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enpire.track.render_pending", description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="a session's videos_pending.jsonl (tag enpire.videos.file)")
    parser.add_argument("--no-wait", action="store_true", help="exit at once if another renderer is on it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        os.nice(10)
    except OSError:
        pass
    if not args.file.is_file():
        print(f"render_pending: no such file {args.file}", file=sys.stderr)
        return 2
    counts = render_pending(args.file, wait=not args.no_wait)
    log.info("%s: %s", args.file, counts)
    return 0 if counts.get("state", "done") == "done" or counts.get("busy") else 1


if __name__ == "__main__":
    raise SystemExit(main())
