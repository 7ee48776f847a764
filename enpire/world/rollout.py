"""The attempts of one trial: policy -> controller -> envelope -> physics, judged by the verifier.

pass@k: up to done.attempts attempts; a retry continues from the state the failed attempt
left and the policy's reset() is told why it failed. A breach ends the trial as `unsafe` at
once; an exception from the policy ends it as `crash` (the station stays usable).
"""

from __future__ import annotations

import math
import time
import traceback
from typing import TYPE_CHECKING

import numpy as np

from enpire.control import estop_stop
from enpire.policy.api import Policy
from enpire.world.api import TrialRecord
from enpire.world.recording import TrajectoryRecorder, VideoRecorder
from enpire.world.replay import ReplayRecorder

if TYPE_CHECKING:
    from enpire.world.station import SimStation


def run_attempts(st: SimStation, policy: Policy, rec: TrialRecord, video: VideoRecorder | ReplayRecorder | None,
                 traj: TrajectoryRecorder | None) -> None:
    spec, task, physics, ver = st.spec, st.scene.task, st.scene.physics, st._verifier
    dt, size = st._dt, st.action_size
    limit_steps = math.ceil(spec.done.time_limit_s / dt - 1e-9)
    # The per-control-step loop: bound methods hoisted, nothing allocated but the action and observation.
    step_fn, observe, act, shaping, judge, hopeless = (st.step, st.observe, policy.act, task.shaping_reward,
                                                       ver.step, task.should_terminate)
    feedback = None
    step = 0
    # operator estop: a 1-byte shared flag read before every control step; `checked` = wall time just before
    # the last read, so an estop record can prove the flag was still unset one step before the stop.
    estop, clock = getattr(st, "_estop", b"\0"), time.time
    started_at = checked = clock()
    for attempt in range(1, spec.done.attempts + 1):
        rec.attempts = attempt
        ver.begin_attempt()
        event = None
        try:
            obs = observe()
            policy.reset(obs, feedback)
            for _ in range(limit_steps):
                previous, checked = checked, clock()
                if estop[0]:  # ~0.1 us with the clock: the robot stops within one control step of the estop
                    event = estop_stop(st, step, started_at, previous)
                    break
                action = np.asarray(act(obs), dtype=float).ravel()
                if action.shape != (size,):
                    raise ValueError(f"policy action: got shape {action.shape}; expected ({size},)")
                clamps, event = step_fn(action, step)
                rec.clamps += clamps
                step += 1
                rec.steps = step
                rec.robot_seconds += dt
                if traj is not None:
                    traj.add(st.scene.data, action, attempt)
                if video is not None:
                    video.maybe_capture(st.scene.data, step)
                if event is not None:
                    break
                rec.shaping_return += shaping(physics)
                if judge(dt) or hopeless(physics):
                    break
                obs = observe()
        except Exception:
            rec.outcome, rec.error = "crash", traceback.format_exc()
            rec.reason = "policy raised"
            return
        if event is not None and event.kind == "estop":
            rec.safety_events.append(event)
            rec.outcome, rec.reason = "estopped", f"operator estop at control step {event.step}"
            return
        if event is not None:
            rec.safety_events.append(event)
            rec.outcome, rec.reason = "unsafe", f"safety stop: {event.kind} value={event.value} limit={event.limit}"
            ver.verdict(safety_stopped=True)  # integrity is re-checked even here
            return
        verdict = ver.verdict(safety_stopped=False)
        rec.reason = verdict.reason
        if verdict.success:
            rec.success_attempt = attempt
            rec.pass_at_k = True
            rec.pass_at_1 = attempt == 1
            rec.outcome = "success" if attempt == 1 else "failure"
            return
        feedback = st.feedback(attempt + 1, verdict.reason, verdict.quantities)
    rec.outcome = "failure"
