"""Labelled frames for the detector, from rollouts in simulation.

Each trial runs a candidate on a station whose judge is a FrameCollector: the state verifier decides success
as in any session, and every frame at the detector's rate is kept with its label (all the task's success
conditions hold in that frame). Candidates mix the scripted baseline, small perturbations of it and uniform
draws from its parameter space, so the data holds successes, near misses and plain failures. With `jitter`
the camera moves by up to 1 cm and the lights change by up to 15% from trial to trial.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from enpire.agent.space import from_unit, to_unit
from enpire.detector.verifier import FrameCollector
from enpire.records import Candidate, TrialRequest
from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)
MIX = (("baseline", 0.4), ("near", 0.3), ("uniform", 0.3))  # where the candidates come from, and how often
NEAR_STD = 0.15  # perturbations of the baseline, in unit coordinates of the parameter space


@dataclass
class TrialFrames:
    """One trial's frames with labels, and the state verifier's verdict of the trial."""

    seed: int
    source: str  # baseline | near | uniform
    frames: np.ndarray  # (n, H, W, 3) uint8
    labels: np.ndarray  # (n,) bool: the success conditions hold in the frame
    attempt: np.ndarray  # (n,) the attempt (1-based) each frame belongs to
    frame_step: np.ndarray  # (n,) the control step of its attempt each frame was taken after
    met_step: dict[int, int]  # attempt -> the control step at which the state verifier's hold was met
    pass_at_1: bool  # the state verifier's verdict of attempt 1
    pass_at_k: bool
    outcome: str


def candidates(spec: ExperimentSpec, n: int, rng: np.random.Generator) -> list[tuple[str, Candidate]]:
    """n candidates of the scripted policy: (source, candidate), in the proportions of MIX."""
    policy = spec.policy
    base = policy.defaults()
    u0 = to_unit(base, policy)
    names = [name for name, _ in MIX]
    picks = rng.choice(len(MIX), size=n, p=[w for _, w in MIX])
    out = []
    for i, pick in enumerate(picks):
        source = names[int(pick)]
        if source == "baseline" or not policy.params:
            params = dict(base)
        elif source == "near":
            params = from_unit(np.clip(u0 + rng.normal(0.0, NEAR_STD, len(u0)), 0.0, 1.0), policy)
        else:
            params = from_unit(rng.random(len(u0)), policy)
        out.append((source, Candidate(f"detector-{i:04d}", "params", params)))
    return out


def collect(spec: ExperimentSpec, trials: int, seed: int, camera: str, image_size: int, rate_hz: float,
            jitter: bool = False, progress: Callable[[int, int], None] | None = None) -> list[TrialFrames]:
    """`trials` labelled trials on one station (deterministic for a seed without jitter... and with it)."""
    from enpire.fleet.stations import make_station

    rng = np.random.default_rng(seed)
    judge = functools.partial(FrameCollector, camera=camera, image_size=image_size, rate_hz=rate_hz)
    station = make_station(spec, 0, verifier=judge)
    collector: FrameCollector = station._verifier  # type: ignore[assignment]  # the judge built above
    out: list[TrialFrames] = []
    t0 = time.perf_counter()
    try:
        for i, (source, cand) in enumerate(candidates(spec, trials, rng)):
            if jitter:
                collector.camera.jitter(rng)
            trial_seed = int(rng.integers(2**31))
            rec = station.run_trial(TrialRequest(f"d{i:05d}", 0, trial_seed, cand))
            got = collector.take()
            out.append(TrialFrames(trial_seed, source, got["frames"], got["labels"], got["attempt"],
                                   got["frame_step"], got["met_step"], bool(rec.pass_at_1), bool(rec.pass_at_k),
                                   rec.outcome))
            if progress is not None:
                progress(i + 1, trials)
    finally:
        collector.camera.close()
        station.close()
    log.info("collected %d trials (%d frames) in %.1f s", len(out), sum(len(t.labels) for t in out),
             time.perf_counter() - t0)
    return out
