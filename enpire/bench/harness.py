"""Benchmarks of the world: `harness` (station rollout rate vs raw physics, per task) and `render`.

harness: for each registered task (its default robot), the raw rate of `mj_step(m, d, n)`
on the composed model (physics steps per second, n = physics steps per control step)
against the station's rate with policy, controller, envelope, verifier and telemetry on
(physics steps per second of whole trials, resets excluded). Figures: `<task>_raw_sps`,
`<task>_station_sps`, `<task>_ratio`, and `min_ratio` (target >= 0.7).
render: offscreen frames per second at the spec's video size.
"""

from __future__ import annotations

import logging
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported: offscreen rendering without a display
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import mujoco  # noqa: E402

from enpire.bench import bench  # noqa: E402

log = logging.getLogger(__name__)


def _raw_rate(spec, seconds: float) -> float:
    from enpire.world.scene import build_scene

    scene = build_scene(spec)
    m, d = scene.model, scene.data
    d.qpos[scene.robot.qpos_adr] = scene.robot.builder.home_qpos
    n = spec.physics_steps_per_control
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(50):
            mujoco.mj_step(m, d, n)
        steps += 50 * n
    return steps / (time.perf_counter() - t0)


def _station_rate(spec, trials: int) -> float:
    from enpire.world.api import Candidate, TrialRequest
    from enpire.world.station import SimStation

    st = SimStation(spec, 0)
    steps, busy = 0, 0.0
    for seed in range(trials):
        st.reset(seed)  # reset outside the timed part
        req = TrialRequest(f"bench{seed}", 0, seed, Candidate("bench"))
        t0 = time.perf_counter()
        rec = st.run_trial(req)
        busy += time.perf_counter() - t0
        steps += rec.steps * spec.physics_steps_per_control
    return steps / busy if busy else 0.0


@bench("harness", "station rollout rate vs raw mj_step rate, per task (target ratio >= 0.7)")
def harness(quick: bool) -> dict[str, float]:
    from enpire.spec import load_spec
    from enpire.world.tasks.base import load_tasks

    out: dict[str, float] = {}
    for name in sorted(load_tasks()):
        try:
            spec = load_spec([f"task={name}"])
        except Exception as e:  # a task whose configs do not load yet is reported, not fatal
            log.warning("harness: task %s skipped: %s", name, e)
            continue
        raw = _raw_rate(spec, 0.5 if quick else 2.0)
        station = _station_rate(spec, 2 if quick else 8)
        out[f"{name}_raw_sps"] = raw
        out[f"{name}_station_sps"] = station
        out[f"{name}_ratio"] = station / raw
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
