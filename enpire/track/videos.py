"""The videos a session logs: which trials are shown, and when they are rendered from their replays.

Stations keep a replay of every trial (enpire.world.replay: positions at the video frame rate), so no
station waits on software rendering. When an iteration closes, the MLflow writer picks what it shows:

- Which iterations (`video.iterations`): `kept` (default) shows the iterations kept by the idea tree and
  the one whose candidate met /done; `all` shows every iteration.
- Which trials: a shown iteration's first success and a typical failure (the first trial, in dispatch
  order, of the most common way its trials failed: outcome and reason with the numbers left out).

Every other replay is deleted at once, so a long session does not fill the disk. The shown ones are
rendered (`video.render`):

- `background` (default): the writer logs the iteration at once (trial rows without a video) and queues
  its shown trials in the session's pending file (`PendingVideos`, `videos_pending.jsonl` beside the
  replays); after the summary, a detached `python -m enpire.track.render_pending FILE` renders them,
  logs each as `videos/<trial>.mp4` of its iteration run, fills `video_artifact` in the iteration's
  `trials.jsonl` and deletes the replay. The session run's tag `enpire.videos` says where that stands:
  `pending` (queued, not rendered), `rendering` (a renderer is on it), `done`; `enpire.videos.pending`
  counts what is left. Each iteration run with queued videos has the same tag.
- `on_demand`: queued the same way but left for `python -m enpire.report --videos` (or the command above).
- `inline`: the writer renders them itself before it logs the iteration (the summary waits for them).

A replay that cannot be rendered costs its video, never the iteration's record; after MAX_FAILURES
failures in a row a renderer stops (rendering itself is broken: no GL).
"""

from __future__ import annotations

import fcntl
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enpire.records import TrialRecord
from enpire.spec.model import ExperimentSpec
from enpire.track.atomic import append_line_durable, read_lines
from enpire.world.replay import ReplayRenderer

log = logging.getLogger(__name__)

MAX_FAILURES = 3
PENDING_NAME = "videos_pending.jsonl"
RENDER_MODES = ("background", "on_demand", "inline")
SELECTIONS = ("kept", "all")
TAG = "enpire.videos"  # pending | rendering | done | none (nothing to show) on the session and iteration runs
TAG_PENDING = "enpire.videos.pending"  # videos not rendered yet (session run)
TAG_FILE = "enpire.videos.file"  # the session's pending file (session run)


def _video_option(spec: ExperimentSpec, key: str, default: str, allowed: tuple[str, ...]) -> str:
    video = spec.resolved.get("video", {}) if hasattr(spec.resolved, "get") else {}
    value = str(video.get(key) or default)
    if value not in allowed:
        raise ValueError(f"video.{key}: got {value!r}; expected one of {allowed}")
    return value


def render_mode(spec: ExperimentSpec) -> str:
    """`video.render`: background (default) | on_demand | inline."""
    return _video_option(spec, "render", "background", RENDER_MODES)


def selection(spec: ExperimentSpec) -> str:
    """`video.iterations`: kept (default) | all."""
    return _video_option(spec, "iterations", "kept", SELECTIONS)


def _order(record: TrialRecord) -> tuple[int, str]:
    return record.iteration, record.trial_id  # trial ids are i<iteration>-t<k>: dispatch order


def failure_kind(record: TrialRecord) -> str:
    """How a trial failed, numbers left out: trials that failed the same way share it."""
    return f"{record.outcome}: {re.sub(r'[-+]?[0-9][0-9.eE+-]*', '#', record.reason or '')}"


def shown_trials(trials: list[TrialRecord]) -> list[TrialRecord]:
    """A typical failure and the first success (in dispatch order) among trials that kept a replay.

    The typical failure is the first trial of the most common failure kind (a tie goes to the kind seen
    first)."""
    with_replay = sorted((r for r in trials if r.replay and Path(r.replay).is_file()), key=_order)
    failures = [r for r in with_replay if not r.pass_at_1]
    typical = None
    if failures:
        counts = Counter(failure_kind(r) for r in failures)
        most = max(counts.values())
        typical = next(r for r in failures if counts[failure_kind(r)] == most)
    first_success = next((r for r in with_replay if r.pass_at_1), None)
    return [r for r in (typical, first_success) if r is not None]


def discard(trials: list[TrialRecord], keep: frozenset[str] | set[str] = frozenset()) -> None:
    """Delete the replays of `trials` but those of the trial ids in `keep`."""
    for record in trials:
        if record.replay and record.trial_id not in keep:
            Path(record.replay).unlink(missing_ok=True)


class IterationVideos:
    """Renders shown trials to `<folder>/<trial_id>.mp4`; one renderer per thread (GL contexts are per thread)."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec
        self._local = threading.local()
        self._renderers: list[ReplayRenderer] = []
        self._lock = threading.Lock()
        self.failed = 0
        self._streak = 0
        self.disabled: str | None = None  # set after MAX_FAILURES failures in a row: rendering itself is broken

    def _renderer(self) -> ReplayRenderer:
        renderer = getattr(self._local, "renderer", None)
        if renderer is None:
            renderer = self._local.renderer = ReplayRenderer(self.spec)
            with self._lock:
                self._renderers.append(renderer)
        return renderer

    def render_one(self, trial_id: str, replay: str, folder: Path) -> tuple[str | None, str | None]:
        """(file name under `folder`, None) when rendered, else (None, why)."""
        if self.disabled:
            return None, self.disabled
        target = folder / f"{trial_id}.mp4"
        try:
            self._renderer().render(replay, target)
        except Exception as error:  # a broken replay or renderer: no video, the record still goes in
            self.failed += 1
            self._streak += 1
            log.warning("video of trial %s not rendered: %s", trial_id, error)
            if self._streak >= MAX_FAILURES:
                self.disabled = f"{self._streak} videos in a row failed, last: {error}"
                log.error("no more videos this session (%s); set MUJOCO_GL=egl or osmesa for offscreen "
                          "rendering, or video.enabled=false", self.disabled)
            return None, f"{type(error).__name__}: {error}"[:300]
        self._streak = 0
        return target.name, None

    def render(self, trials: list[TrialRecord], folder: Path) -> dict[str, str]:
        """trial_id -> file name under `folder` for each shown trial whose video could be rendered."""
        out: dict[str, str] = {}
        if not self.spec.video.enabled:
            return out
        for record in shown_trials(trials):
            name, _ = self.render_one(record.trial_id, str(record.replay), folder)
            if name is not None:
                out[record.trial_id] = name
            if self.disabled:
                break
        return out

    @staticmethod
    def discard(trials: list[TrialRecord]) -> None:
        """Delete the iteration's replays once its record is written."""
        discard(trials)

    def close(self) -> None:
        with self._lock:
            renderers, self._renderers = self._renderers, []
        for renderer in renderers:
            try:
                renderer.close()
            except Exception as error:  # a context of a thread that has ended: nothing left to free
                log.debug("renderer close: %s", error)


# ---- the pending file ----------------------------------------------------------------------------


@dataclass
class PendingVideo:
    iteration: int
    run_id: str  # the iteration run the video belongs to
    trial_id: str
    replay: str
    why: str  # "first success" | "typical failure"

    @property
    def artifact(self) -> str:
        return f"videos/{self.trial_id}.mp4"


@dataclass
class PendingState:
    """A pending file, folded: the session, its queued videos, which are rendered (or failed), whether closed."""

    session_run_id: str
    tracking_uri: str
    spec: dict[str, Any]
    videos: list[PendingVideo]
    rendered: dict[str, str]  # trial_id -> artifact
    failed: dict[str, str]  # trial_id -> why
    closed: bool  # the session ended: nothing more will be queued

    @property
    def todo(self) -> list[PendingVideo]:
        return [v for v in self.videos if v.trial_id not in self.rendered and v.trial_id not in self.failed]

    def iterations(self, todo_only: bool = True) -> list[int]:
        return sorted({v.iteration for v in (self.todo if todo_only else self.videos)})


class PendingVideos:
    """The append-only file of a session's videos still to render (durable lines: survives `kill -9`).

    Lines: `{"kind": "session", ...}` (first), `{"kind": "video", ...}` per queued trial, `{"kind": "rendered"
    | "failed", "trial_id": ...}` as a renderer gets through them, `{"kind": "closed" | "opened"}` when the
    session ends or is resumed. `lock()` (a file lock beside it) is held by whoever renders, so one renderer
    at a time works on a file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: Path, session_run_id: str, tracking_uri: str, spec: dict[str, Any]) -> PendingVideos:
        path.parent.mkdir(parents=True, exist_ok=True)
        append_line_durable(path, {"kind": "session", "session_run_id": session_run_id,
                                   "tracking_uri": tracking_uri, "spec": spec, "created": time.time()})
        return cls(path)

    def add(self, video: PendingVideo) -> None:
        append_line_durable(self.path, {"kind": "video", **video.__dict__})

    def mark(self, trial_id: str, artifact: str | None = None, error: str | None = None) -> None:
        if artifact is not None:
            append_line_durable(self.path, {"kind": "rendered", "trial_id": trial_id, "artifact": artifact})
        else:
            append_line_durable(self.path, {"kind": "failed", "trial_id": trial_id, "error": error or "?"})

    def set_closed(self, closed: bool) -> None:
        append_line_durable(self.path, {"kind": "closed" if closed else "opened", "at": time.time()})

    def read(self) -> PendingState:
        lines = read_lines(self.path)
        if not lines or lines[0].get("kind") != "session":
            raise ValueError(f"{self.path}: not a pending-videos file (no session line first)")
        head = lines[0]
        state = PendingState(head["session_run_id"], head["tracking_uri"], head["spec"], [], {}, {}, False)
        fields = PendingVideo.__dataclass_fields__
        queued: dict[str, PendingVideo] = {}  # by trial: a write retried through a store outage queues it again
        for line in lines[1:]:
            kind = line.get("kind")
            if kind == "video":
                queued[line["trial_id"]] = PendingVideo(**{k: line[k] for k in fields})
            elif kind == "rendered":
                state.rendered[line["trial_id"]] = line["artifact"]
                state.failed.pop(line["trial_id"], None)
            elif kind == "failed":
                state.failed[line["trial_id"]] = line.get("error", "?")
            elif kind in ("closed", "opened"):
                state.closed = kind == "closed"
        state.videos = list(queued.values())
        return state

    @contextmanager
    def lock(self, wait: bool = True) -> Iterator[bool]:
        """Hold the render lock; yields False (without it) when `wait` is false and someone else holds it."""
        with open(self.path.with_name(self.path.name + ".lock"), "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def busy(self) -> bool:
        """True while a renderer holds the lock."""
        with self.lock(wait=False) as got:
            return not got
