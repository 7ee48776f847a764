"""The classifier verifier (`done.verifier: classifier`): judges each attempt from camera frames.

Every 1/rate_hz seconds of robot time it renders the station's camera (enpire.detector.camera), asks the
frozen detector (enpire.detector.model) for P(success state), and applies the predicate's hold time to its
output (enpire.detector.judge). It reads no simulator state to judge. Like the state verifier it re-checks
done_sha256 (which covers the weights file) before every verdict and refuses to judge if it moved.

In simulation it also runs the state verifier (enpire.world.verifier) on the same attempt as a shadow: the
verdict a perfect verifier would give, recorded per trial (TrialRecord.shadow) for the agreement figures and
never given to an agent (IterationSummary does not carry it) nor used to end an attempt.

FrameCollector (training data, enpire.detector.collect) is the same clock and camera with the state verifier
as the judge: it keeps every frame with its label (the state conditions hold in it) and never ends an attempt
early, so the robot's behaviour after success is in the data too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from enpire.detector.camera import CameraNotFound, FrameCamera
from enpire.detector.files import KEY, weights_path
from enpire.detector.judge import HoldJudge, frames_needed
from enpire.detector.model import Detector, DetectorFileError, load_detector
from enpire.spec.errors import IntegrityError, Problem, SpecError
from enpire.spec.model import ClassifierSpec, DoneSpec
from enpire.world.verifier import StateReader, Verdict, Verifier


def load_for(task: str, options: ClassifierSpec) -> Detector:
    """The detector `done.classifier` names for `task`, checked: SpecError (exit 2) naming the key."""
    path = weights_path(task, options.weights)
    if path is None:
        raise SpecError([Problem(KEY, None, f"a weights file (task {task!r} has no folder with a shipped one)")])
    try:
        detector = load_detector(path)
    except DetectorFileError as error:
        raise SpecError([Problem(KEY, str(path), f"a detector weights file for task {task!r} (train one: "
                                                 f"python -m enpire.detector train task={task}): {error}")]) from None
    if detector.config.task != task:
        raise SpecError([Problem(KEY, str(path), f"a detector trained on task {task!r}, not on "
                                                 f"{detector.config.task!r}")])
    return detector


class _FrameClock:
    """A frame every `every` control steps of an attempt (the first after `every` steps)."""

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = float(rate_hz)
        self.every = 0  # known at the first step (its dt)
        self.steps = 0

    def tick(self, dt: float) -> bool:
        if not self.every:
            self.every = max(1, round(1.0 / (self.rate_hz * dt)))
        self.steps += 1
        return self.steps % self.every == 0

    def period_s(self, dt: float) -> float:
        return max(1, round(1.0 / (self.rate_hz * dt))) * dt


class ClassifierVerifier:
    """Per-attempt success from the detector's frames, with hold; one instance per station."""

    needs_scene = True  # SimStation passes its scene (the camera's model and data)

    def __init__(self, done: DoneSpec, read: StateReader, expected_sha256: str, fingerprint: Callable[[], str],
                 scene: Any = None, detector: Detector | None = None, shadow: bool = True) -> None:
        if scene is None:
            raise TypeError("ClassifierVerifier needs the station's scene (its camera)")
        self._done, self._expected, self._fingerprint = done, expected_sha256, fingerprint
        self.detector = detector if detector is not None else load_for(done.name, done.classifier)
        torch.set_num_threads(1)  # a station is one process of a fleet: no oversubscribed cores, one summation order
        cfg = self.detector.config
        try:
            self.camera = FrameCamera(scene.model, cfg.camera, cfg.image_size)
        except CameraNotFound as error:
            raise SpecError([Problem(KEY, cfg.camera, f"a detector whose camera is in task {done.name!r}: "
                                                      f"{error}")]) from None
        self._data = scene.data
        self.rate_hz = float(done.classifier.rate_hz or cfg.rate_hz)
        given = done.classifier.threshold  # None: the detector's calibrated decision rule
        self.threshold = float(cfg.threshold if given is None else given)
        self._clock = _FrameClock(self.rate_hz)
        self._judge: HoldJudge | None = None
        # the shadow: the state verifier on the same attempt (simulation only; never ends an attempt)
        self.shadow: Verifier | None = Verifier(done, read, expected_sha256, fingerprint) if shadow else None
        self._dt = 0.0
        self.begin_attempt()

    def begin_attempt(self) -> None:
        self._clock.steps = 0
        self.shadow_verdict: Verdict | None = None  # set by verdict(); rollout.note_shadow reads it
        if self._judge is not None:
            self._judge.begin()
        if self.shadow is not None:
            self.shadow.begin_attempt()

    def step(self, dt: float) -> bool:
        if self._judge is None:  # the first step gives dt: the hold in frames at the rate actually run
            self._dt = dt
            rate = 1.0 / self._clock.period_s(dt)
            cfg = self.detector.config  # its calibrated margin, in time: the same seconds at another rate
            needed = frames_needed(self._done.hold_s, rate) + math.ceil(cfg.extra_frames * rate / cfg.rate_hz - 1e-9)
            self._judge = HoldJudge(self.threshold, needed)
        if self.shadow is not None:
            self.shadow.step(dt)
        if self._clock.tick(dt):
            p = float(self.detector.net.probabilities(self.camera.frame(self._data)[None])[0])
            return self._judge.see(p)
        return self._judge.met

    def quantities(self) -> dict[str, float]:
        """Nothing: a retry's feedback carries these to the policy, which must not learn the detector's output."""
        return {}

    def verdict(self, safety_stopped: bool) -> Verdict:
        """The judgement of the current attempt (the shadow's, too, in shadow_verdict). Raises IntegrityError if
        the criteria, the code or the weights moved."""
        actual = self._fingerprint()
        if actual != self._expected:
            raise IntegrityError("done", self._expected, actual)
        self.shadow_verdict = None if self.shadow is None else self.shadow.verdict(safety_stopped)
        judge, values = self._judge, self.quantities()
        if safety_stopped and not self._done.allow_safety_stop:
            return Verdict(False, 0.0, "safety stop", values)
        if judge is None:
            return Verdict(False, 0.0, "not met: no frame seen", values)
        held = max(0, judge.longest - 1) * self._clock.period_s(self._dt)  # a run of n frames: n - 1 periods
        if judge.met:
            return Verdict(True, held, f"detector saw success in {judge.longest} frames in a row "
                                       f"(needs {judge.needed} at P >= {judge.threshold:g})", values)
        return Verdict(False, held, f"not met: detector saw success in at most {judge.longest} frames in a row "
                                    f"of {judge.needed} needed ({judge.frames} frames)", values)

    def close(self) -> None:
        self.camera.close()


class FrameCollector(Verifier):
    """Training data: the state verifier judges; every frame at `rate_hz` is kept with its label."""

    needs_scene = True

    def __init__(self, done: DoneSpec, read: StateReader, expected_sha256: str, fingerprint: Callable[[], str],
                 scene: Any = None, camera: str = "front", image_size: int = 64, rate_hz: float = 10.0) -> None:
        super().__init__(done, read, expected_sha256, fingerprint)
        self.camera = FrameCamera(scene.model, camera, image_size)
        self._data = scene.data
        self._clock = _FrameClock(rate_hz)
        self.frames: list[np.ndarray] = []
        self.labels: list[bool] = []
        self.attempt_of: list[int] = []
        self.frame_step: list[int] = []  # control step of the attempt (1-based) each frame was taken after
        self.met_step: dict[int, int] = {}  # attempt -> the step at which the state verifier's hold was met
        self._attempt = 0

    def begin_attempt(self) -> None:
        super().begin_attempt()
        if hasattr(self, "_clock"):
            self._clock.steps = 0
            self._attempt += 1

    def step(self, dt: float) -> bool:
        met = super().step(dt)
        tick = self._clock.tick(dt)
        if met and self._attempt not in self.met_step:
            self.met_step[self._attempt] = self._clock.steps
        if tick:
            self.frames.append(self.camera.frame(self._data))
            self.labels.append(all(c.holds(float(self._read(c.quantity))) for c in self._done.conditions))
            self.attempt_of.append(self._attempt)
            self.frame_step.append(self._clock.steps)
        return False  # never ends an attempt: what the robot does after success is data too

    def take(self) -> dict[str, Any]:
        """The trial so far (frames, labels, attempt, frame_step arrays and met_step); cleared for the next."""
        out = {"frames": np.asarray(self.frames, np.uint8), "labels": np.asarray(self.labels, bool),
               "attempt": np.asarray(self.attempt_of, np.int16), "frame_step": np.asarray(self.frame_step, np.int32),
               "met_step": dict(self.met_step)}
        self.frames, self.labels, self.attempt_of, self.frame_step, self.met_step = [], [], [], [], {}
        self._attempt = 0
        return out
