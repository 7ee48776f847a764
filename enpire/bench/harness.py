"""Benchmarks of the world: `harness` (station rollout rate vs raw physics, per task) and `render`.

harness: for each registered task (its default robot), the station's rate with policy,
controller, envelope, verifier and telemetry on (physics steps per second of whole trials,
resets excluded) against the raw rate of bare `mj_step(m, d, n)` over the very same physics
steps (the trial replayed from the same reset with its recorded controls; n = physics steps per
control step). Contact-rich phases cost more physics than a resting scene, so only a replay of
the same trajectory isolates the station's own overhead. Medians of interleaved repeats. Figures: `<task>_raw_sps`,
`<task>_station_sps`, `<task>_ratio`, and `min_ratio` (target >= 0.8 on a quiet machine).
render: offscreen frames per second at the spec's video size.
"""

from __future__ import annotations

import logging
import statistics
import time

import mujoco
import numpy as np

from enpire.bench import bench

log = logging.getLogger(__name__)


def _recorded_controls(st, seed: int) -> np.ndarray:
    """Every control step's `data.ctrl` of the trial for `seed` (run once, untimed, with a step hook)."""
    from enpire.records import Candidate, TrialRequest

    rows: list[np.ndarray] = []
    st._step_hook = lambda m, d: rows.append(d.ctrl.copy())
    try:
        st.run_trial(TrialRequest(f"rec{seed}", 0, seed, Candidate("bench")))
    finally:
        st._step_hook = None
    return np.array(rows)


def _raw_replay_s(st, spec, seed: int, ctrl: np.ndarray) -> float:
    """Seconds that bare `mj_step(m, d, n)` takes for the very same physics steps as the trial: the same
    verified reset, then the recorded controls written once per control step and nothing else."""
    m, d = st.scene.model, st.scene.data
    st.reset(seed)
    n = spec.physics_steps_per_control
    t0 = time.perf_counter()
    for row in ctrl:
        d.ctrl[:] = row
        mujoco.mj_step(m, d, n)
    return time.perf_counter() - t0


def _station_trial_s(st, seed: int) -> tuple[float, int]:
    """(seconds, control steps) of one trial through `SimStation.run_trial` (policy built from the
    candidate, controller, envelope, verifier and telemetry on); the verified reset inside run_trial
    is timed separately and left out, since its settle steps are not counted as trial steps."""
    from enpire.records import Candidate, TrialRequest

    reset = st.reset
    spent = [0.0]

    def timed_reset(s: int) -> bool:
        t = time.perf_counter()
        try:
            return reset(s)
        finally:
            spent[0] += time.perf_counter() - t

    st.reset = timed_reset
    try:
        t0 = time.perf_counter()
        rec = st.run_trial(TrialRequest(f"bench{seed}", 0, seed, Candidate("bench")))
        return time.perf_counter() - t0 - spent[0], rec.steps
    finally:
        del st.reset  # back to the class's method


@bench("harness", "station rollout rate vs raw mj_step rate, per task (target ratio >= 0.8)")
def harness(quick: bool) -> dict[str, float]:
    """Per task: the trials of seeds 0..k-1 run through the station (timed), and the same physics
    steps replayed with bare mj_step (timed), alternating, `repeats` times; each figure is the
    median over the repeats of (physics steps / seconds) of all k trials; the ratio is the median of the
    repeats' paired ratios."""
    from enpire import plugins
    from enpire.fleet.stations import make_station
    from enpire.spec import load_spec

    repeats, trials = (7, 5) if quick else (9, 8)
    out: dict[str, float] = {}
    for name in plugins.names("tasks"):
        try:
            spec = load_spec([f"task={name}"])
        except Exception as e:  # a task whose configs do not load yet is reported, not fatal
            log.warning("harness: task %s skipped: %s", name, e)
            continue
        st = make_station(spec, 0)
        n = spec.physics_steps_per_control
        controls = {seed: _recorded_controls(st, seed) for seed in range(trials)}
        raws, stations = [], []
        for _ in range(repeats):
            station_s, raw_s, steps = 0.0, 0.0, 0
            for seed in range(trials):
                sec, k = _station_trial_s(st, seed)
                if k != len(controls[seed]):
                    raise RuntimeError(f"harness: task {name} seed {seed} is not deterministic "
                                       f"({k} steps timed, {len(controls[seed])} recorded)")
                station_s, steps = station_s + sec, steps + k * n
                raw_s += _raw_replay_s(st, spec, seed, controls[seed])
            stations.append(steps / station_s)
            raws.append(steps / raw_s)
        out[f"{name}_raw_sps"] = statistics.median(raws)
        out[f"{name}_station_sps"] = statistics.median(stations)
        # paired: each repeat's station and raw runs alternate, so their ratio cancels slow drifts of the
        # machine's load that the ratio of two separate medians would keep
        out[f"{name}_ratio"] = statistics.median(st_sps / raw_sps for st_sps, raw_sps in zip(stations, raws,
                                                                                          strict=True))
    ratios = [v for k, v in out.items() if k.endswith("_ratio")]
    if ratios:
        out["min_ratio"] = min(ratios)
    return out


@bench("render", "offscreen rendering, frames per second at the video size")
def render(quick: bool) -> dict[str, float]:
    from enpire.spec import load_spec
    from enpire.world.scene import build_scene

    spec = load_spec(["task=drawer"])
    scene = build_scene(spec)
    mujoco.mj_forward(scene.model, scene.data)
    r = mujoco.Renderer(scene.model, height=spec.video.height, width=spec.video.width)
    frames = 10 if quick else 50
    t0 = time.perf_counter()
    for _ in range(frames):
        r.update_scene(scene.data, camera="front")
        r.render()
    fps = frames / (time.perf_counter() - t0)
    r.close()
    return {"fps": fps, "width": float(spec.video.width), "height": float(spec.video.height)}
