"""Evidence an agent can look at: recent trials' records and the replays of a few of them, as still images.

The loop keeps it (`EvidenceStore.keep`, at every iteration's close, before the tracking observers see the
iteration): every trial's record as the trial table logs it (bounded to the last `keep_records` trials), and,
per iteration, hard links to the replays (enpire.world.replay) of its first success and its first failure, so
the MLflow writer deleting replays it does not show cannot take them away. Linked replays live under
`<run dir>/evidence/` (emptied when a session starts there, so a second session in the same directory never
shows the first one's trials); the oldest are deleted once more than `keep_replays` plus what a strict call
may still see (`lag`) are linked. Replays exist when the session records them (`video.enabled`, on by
default); without them an agent still reads the records, and asking for frames says why there are none. A
session resumed from MLflow starts with an empty store (its earlier replays are gone).

What a call sees is cut to the last `keep_records` records and the last `keep_replays` replays *among the
iterations below its horizon* (all closed iterations with determinism=fast), so under determinism=strict
the evidence a call is given does not depend on how many newer iterations happened to close meanwhile.

Agents get an `EvidenceView` in their ResearchState: an immutable snapshot of what was kept when the call
started (with determinism=strict only the iterations below the call's horizon), whose `frames` renders stills
off the loop's thread. Every render runs on one thread of its own (`StillRenderer`): a MuJoCo GL context
belongs to the thread that made it, and agent calls run on several. A renderer that fails to start (no GL) or
fails RENDER_FAILURES times in a row is disabled for the session with its reason, logged once; asking for
frames then answers that reason. Nothing here raises out of an agent's call but EvidenceMissing.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import shutil
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from enpire.records import IterationSummary, TrialRecord
from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)

KEEP_REPLAYS = 24  # linked replays kept on disk (two per iteration at most)
KEEP_RECORDS = 400  # trial records kept in memory
RENDER_TIMEOUT_S = 60.0  # a still that takes longer is given up (a hung GL call must not hold an agent's call)
RENDER_FAILURES = 3  # failed renders in a row after which the renderer is disabled
RECORD_KEYS = ("trial_id", "iteration", "station", "seed", "outcome", "attempts", "success_attempt", "pass_at_1",
               "pass_at_k", "robot_seconds", "steps", "clamps", "safety_events", "final_state", "error",
               "attribution")


class EvidenceMissing(LookupError):
    """What an agent asked for is not there (unknown trial, no replay kept); the message says which and why."""


@dataclass(frozen=True)
class TrialNote:
    """One kept trial: its record (RECORD_KEYS of the trial table's row) and, for a few, a replay file."""

    trial_id: str
    iteration: int
    branch: str
    candidate_id: str
    success: bool
    record: dict[str, Any]
    replay: str | None = None


def _png(image: np.ndarray) -> bytes:
    import imageio.v3 as iio

    buffer = io.BytesIO()
    iio.imwrite(buffer, image, extension=".png")
    return buffer.getvalue()


class StillRenderer:
    """Renders frames of replays at a fixed size, always on the same thread (see the module docstring)."""

    def __init__(self, spec: ExperimentSpec, size: tuple[int, int]) -> None:
        self.spec, self.size = spec, (int(size[0]), int(size[1]))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evidence-render")
        self._renderer: Any = None
        self.disabled = ""  # why frames can no longer be rendered ('' while they can)
        self._failures = 0

    def strip(self, replay: str, at: list[float]) -> tuple[bytes, list[float]]:
        """One PNG with the frames at fractions `at` (0 = the trial's start, 1 = its end) side by side, and the
        robot-seconds into the trial of each frame. EvidenceMissing when it cannot be rendered."""
        if self.disabled:
            raise EvidenceMissing(f"no frames: {self.disabled}")
        try:
            future = self._pool.submit(self._strip, replay, list(at))
        except RuntimeError:  # shut down: the session ended
            raise EvidenceMissing("no frames: the session has ended") from None
        try:
            return future.result(timeout=RENDER_TIMEOUT_S)
        except FutureTimeout:
            raise EvidenceMissing(f"no frames: rendering took over {RENDER_TIMEOUT_S:.0f} s") from None

    def _strip(self, replay: str, at: list[float]) -> tuple[bytes, list[float]]:
        try:
            out = self._render(replay, at)
        except EvidenceMissing:
            raise
        except Exception as error:  # noqa: BLE001 - no GL, a corrupt replay ...: frames lost, never the call
            self._failures += 1
            why = f"{type(error).__name__}: {str(error)[:200]}"
            if self._renderer is None or self._failures >= RENDER_FAILURES:
                self.disabled = f"rendering is disabled for this session ({why})"
                log.warning("evidence: %s", self.disabled)
            raise EvidenceMissing(f"the frames could not be rendered ({why})") from None
        self._failures = 0
        return out

    def _render(self, replay: str, at: list[float]) -> tuple[bytes, list[float]]:
        from enpire.world.replay import Replay, ReplayRenderer

        if self._renderer is None:
            renderer = ReplayRenderer(self.spec, self.size)
            renderer.frames_ready()  # builds the scene and the GL context now: a failure here disables stills
            self._renderer = renderer
        rep = Replay(replay)
        last = len(rep) - 1
        indices = [round(min(1.0, max(0.0, float(f))) * last) for f in at]
        frames = self._renderer.frames(rep, indices)
        every = max(1, round(1.0 / (self.spec.control_dt * max(rep.fps, 1e-9))))  # replays without steps
        steps = rep.steps if rep.steps is not None else np.arange(len(rep)) * every
        times = [round(float(steps[i]) * self.spec.control_dt, 2) for i in indices]
        return _png(np.concatenate(frames, axis=1)), times

    def close(self) -> None:
        def _close() -> None:
            if self._renderer is not None:
                self._renderer.close()
                self._renderer = None

        try:
            self._pool.submit(_close).result(timeout=10.0)
        except Exception:  # noqa: BLE001 - a hung or broken GL context: leave it to the process's exit
            log.warning("evidence: the still renderer did not close cleanly", exc_info=True)
        self._pool.shutdown(wait=False)


class EvidenceView:
    """What an agent call may read (immutable; see the module docstring)."""

    def __init__(self, notes: tuple[TrialNote, ...], renderer: StillRenderer | None, reason: str) -> None:
        self.notes = notes  # oldest first
        self._by_id = {n.trial_id: n for n in notes}
        self._renderer = renderer
        self.no_frames_reason = reason  # why no frames can be rendered at all ('' when they can)

    def trial(self, trial_id: str) -> TrialNote:
        note = self._by_id.get(str(trial_id))
        if note is None:
            raise EvidenceMissing(f"no trial {str(trial_id)[:80]!r} among the {len(self.notes)} most recent trials")
        return note

    def trials_of(self, iteration: int) -> list[TrialNote]:
        return [n for n in self.notes if n.iteration == int(iteration)]

    def stills(self, branch: str, count: int) -> list[TrialNote]:
        """Up to `count` trials worth showing: the latest failure and the latest success with a replay (the
        agent's own branch first), then earlier ones, alternating failure and success."""
        with_replay = [n for n in reversed(self.notes) if self.has_frames(n)]
        ranked = sorted(with_replay, key=lambda n: n.branch != branch)  # stable: the newest first within each
        failures = [n for n in ranked if not n.success]
        successes = [n for n in ranked if n.success]
        chosen: list[TrialNote] = []
        while len(chosen) < count and (failures or successes):
            for group in (failures, successes):
                if group and len(chosen) < count:
                    chosen.append(group.pop(0))
        return chosen

    def has_frames(self, note: TrialNote) -> bool:
        return self._renderer is not None and not self._renderer.disabled and bool(note.replay) \
            and Path(str(note.replay)).is_file()

    def frames(self, trial_id: str, at: list[float]) -> tuple[bytes, list[float]]:
        """A PNG strip of the trial's frames at fractions `at` of its length, and their times (robot-s)."""
        note = self.trial(trial_id)
        if self._renderer is None:
            raise EvidenceMissing(f"no frames of trial {note.trial_id}: {self.no_frames_reason}")
        if self._renderer.disabled:
            raise EvidenceMissing(f"no frames of trial {note.trial_id}: {self._renderer.disabled}")
        if not note.replay or not Path(note.replay).is_file():
            raise EvidenceMissing(f"no frames of trial {note.trial_id}: only the first success and the first "
                                  "failure of each recent iteration keep their replay")
        return self._renderer.strip(note.replay, at)


class EvidenceStore:
    """Kept by the loop (see the module docstring)."""

    def __init__(self, spec: ExperimentSpec, root: Path, size: tuple[int, int], lag: int = 0,
                 keep_replays: int = KEEP_REPLAYS, keep_records: int = KEEP_RECORDS) -> None:
        self.root = Path(root)
        self.keep_replays, self.keep_records = int(keep_replays), int(keep_records)
        self.lag = int(lag)
        self.retain = self.keep_replays + 2 * (self.lag + 1)  # linked files kept: what a strict call may still see
        self._newest = -1
        self._notes: OrderedDict[str, TrialNote] = OrderedDict()
        self._linked: list[Path] = []
        self._lock = threading.Lock()
        shutil.rmtree(self.root, ignore_errors=True)  # another session's replays in this run dir are not ours
        self.reason = "" if spec.video.enabled else "this session records no replays (video.enabled=false)"
        self.renderer = StillRenderer(spec, size) if spec.video.enabled else None

    def keep(self, summary: IterationSummary, records: list[TrialRecord]) -> None:
        """Called at an iteration's close, on the loop thread, before the writer may delete its replays."""
        if not records:
            return
        linked = {self._link(r) for r in (next((r for r in records if r.success), None),
                                          next((r for r in records if not r.success), None)) if r is not None}
        with self._lock:
            for r in records:
                doc = r.to_dict()
                path = self.root / f"{r.trial_id}.npz"
                self._notes[r.trial_id] = TrialNote(r.trial_id, summary.index, summary.branch, summary.candidate_id,
                                                    bool(r.success), {k: doc.get(k) for k in RECORD_KEYS},
                                                    str(path) if r.trial_id in linked else None)
                self._notes.move_to_end(r.trial_id)
            self._newest = max(self._newest, summary.index)
            # kept: keep_records below the oldest horizon a call can still have (the newest closed iteration
            # minus the strict lag), and everything above it, so a strict call's view never depends on timing
            cutoff = self._newest - self.lag
            old = sum(1 for n in self._notes.values() if n.iteration < cutoff)
            while old > self.keep_records:
                _, dropped = self._notes.popitem(last=False)
                old -= dropped.iteration < cutoff
        while len(self._linked) > self.retain:
            self._linked.pop(0).unlink(missing_ok=True)

    def _link(self, record: TrialRecord) -> str | None:
        """A hard link (a copy across file systems) of the record's replay into the evidence folder."""
        if not record.replay or not Path(record.replay).is_file():
            return None
        target = self.root / f"{record.trial_id}.npz"
        tmp = target.with_name(f".tmp-{target.name}")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp.unlink(missing_ok=True)
            try:
                os.link(record.replay, tmp)
            except OSError:
                shutil.copyfile(record.replay, tmp)
            os.replace(tmp, target)
        except OSError as error:
            log.warning("evidence: cannot keep the replay of trial %s: %s", record.trial_id, error)
            return None
        if target not in self._linked:
            self._linked.append(target)
        return record.trial_id

    def view(self, horizon: int | None = None) -> EvidenceView:
        """What a call sees: among iterations below `horizon`, the last keep_records records, of which the last
        keep_replays linked ones keep their replay."""
        with self._lock:
            notes = [n for n in self._notes.values() if horizon is None or n.iteration < horizon]
        notes = sorted(notes, key=lambda n: (n.iteration, n.trial_id))[-self.keep_records:]
        with_replay = [i for i, n in enumerate(notes) if n.replay][-self.keep_replays:]
        shown = set(with_replay)
        notes = [n if i in shown or not n.replay else dataclasses.replace(n, replay=None) for i, n in enumerate(notes)]
        return EvidenceView(tuple(notes), self.renderer, self.reason)

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None


def evidence_store(spec: ExperimentSpec, agents: list[Any], root: Path, lag: int = 0) -> EvidenceStore | None:
    """The session's store when one of its agents asks for evidence (`wants_evidence`), else None; frames are
    rendered at the first such agent's `evidence_size` (width, height); `lag`: the strict call order's."""
    wanting = [a for a in agents if getattr(a, "wants_evidence", False)]
    if not wanting:
        return None
    width, height = getattr(wanting[0], "evidence_size", (256, 192))
    return EvidenceStore(spec, root, (int(width), int(height)), lag=lag)
