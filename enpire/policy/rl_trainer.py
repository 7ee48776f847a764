"""One rl candidate's learner job in the trainer slot: demonstrations in, snapshots out while stations act.

Lifecycle (enpire.fleet.trainer_slot drives it):

1. `RLJob.prepare()` (on the loop's thread, before the candidate's first trial is dispatched): builds the
   learner (fresh and seeded, or warm-started from a kept checkpoint) and publishes snapshot 0 into the
   candidate's snapshot directory, which becomes the candidate's `checkpoint`. A fresh residual learner's
   snapshot 0 is the tuned scripted baseline (its residual is zero).
2. `RLJob.run(stop)` (on the slot's worker thread): collects `demos` episodes of the tuned scripted
   demonstrator on an in-process station (verified trials; only successes are kept) into the demo buffer,
   takes `pretrain_steps` gradient steps and publishes; then, until `stop` is set, turns every trial record
   the stations sent (`stream`, enpire.policy.transitions) into online transitions, takes `utd_ratio`
   gradient steps per new transition and publishes a snapshot every `publish_every` steps. Gradient steps
   stop once the job's trainer-seconds allowance is spent (stations keep the last snapshot).
3. After `stop`: the records still in the stream are ingested (counted; no more steps), a last snapshot is
   published, the checkpoint is saved (`rl.zip`, the whole SB3 model) and, with tracking, logged to the
   iteration's MLflow run as artifact `checkpoint/rl.zip` and as an MLflow model `model` (pyfunc wrapper
   of the actor, with a signature: features in, the learner's action out).

Trainer-seconds charged: demo collection plus gradient steps (the job's busy time, not its wall time:
between trials the learner waits for data).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from enpire.policy.rl import base_params, base_policy, features
from enpire.policy.transitions import Transitions, TransitionStream, from_trajectory
from enpire.records import TrialRequest
from enpire.spec.model import ExperimentSpec
from enpire.world.api import AttemptFeedback, Observation, Policy

log = logging.getLogger(__name__)


class NoisyPolicy:
    """The demonstrator with Gaussian noise on its executed position command (DART): recovery in the data."""

    def __init__(self, policy: Policy, noise: float, seed: int) -> None:
        self.policy, self.noise, self.rng = policy, float(noise), np.random.default_rng(seed)

    def reset(self, obs: Observation, feedback: AttemptFeedback | None = None) -> None:
        self.policy.reset(obs, None)

    def act(self, obs: Observation) -> np.ndarray:
        action = np.asarray(self.policy.act(obs), dtype=np.float64).copy()
        if self.noise > 0:
            action[:3] += self.rng.normal(0.0, self.noise, 3)
        return action


@lru_cache(maxsize=8)
def observation_size(spec: ExperimentSpec, residual: bool) -> int:
    """Length of the learner's feature vector on this task (one reset of an in-process station, once per spec)."""
    from enpire.fleet.stations import make_station

    station = make_station(spec, 0)
    try:
        station.reset(0)
        obs = station.observe()
        base = None
        if residual:
            policy = base_policy(spec)
            policy.reset(obs, None)
            base = np.asarray(policy.act(obs), dtype=np.float64)
        return int(features(obs, base).size)
    finally:
        station.close()


def demo_transitions(spec: ExperimentSpec, recipe: dict[str, Any], seed: int,
                     out_dir: Path) -> tuple[Transitions, dict[str, float]]:
    """Verified successful episodes of the tuned scripted demonstrator, as transitions (recorded by the station's
    own TrajectoryRecorder, rewarded like online data)."""
    from enpire.fleet.stations import make_station
    from enpire.policy.demos import demonstrator_params, scripted_candidate

    episodes = int(recipe["demos"])
    stats = {"demo_trials": 0.0, "demo_successes": 0.0, "demo_robot_seconds": 0.0}
    if episodes <= 0:
        return Transitions.empty(), stats
    rng = np.random.default_rng([seed, 17])
    station = make_station(spec, 0)
    parts = []
    try:
        for i, trial_seed in enumerate(int(s) for s in rng.integers(0, 2**31 - 1, episodes)):
            policy = NoisyPolicy(base_policy(spec), float(recipe["demo_noise"]), seed * 7919 + i)
            request = TrialRequest(trial_id=f"demo-{i:03d}", iteration=-1, seed=trial_seed,
                                   candidate=scripted_candidate(demonstrator_params(spec)), record_trajectory=True,
                                   out_dir=str(out_dir / "demos"))
            record = station.run_trial(request, policy=policy)
            stats["demo_trials"] += 1
            stats["demo_robot_seconds"] += record.robot_seconds
            if record.pass_at_k and record.trajectory:
                stats["demo_successes"] += 1
                parts.append(from_trajectory(record.trajectory, record, recipe, lambda: base_policy(spec)))
    finally:
        station.close()
    return (Transitions.concat(parts) if parts else Transitions.empty()), stats


class RLJob:
    """The learner of one rl candidate (see the module docstring)."""

    def __init__(self, spec: ExperimentSpec, recipe: dict[str, Any], out_dir: str | Path, seed: int,
                 stream: TransitionStream, init_from: str | None = None, budget_s: float = float("inf"),
                 device: str = "auto") -> None:
        self.spec, self.recipe, self.out = spec, recipe, Path(out_dir)
        self.seed, self.stream, self.init_from = int(seed), stream, init_from
        self.budget_s, self.device = float(budget_s), device
        self.snapshots = self.out / "snapshots"
        self.learner: Any = None
        self.metrics: dict[str, float] = {}
        self.online_transitions = 0
        self.trials_ingested = 0
        self.busy_s = 0.0
        self.hurry = threading.Event()  # the session ends: wrap up without the remaining gradient steps
        self.out_of_budget: Callable[[float], bool] = lambda busy_s: busy_s >= self.budget_s
        self.demo_seed = int(spec.seed)  # the session's demos: equal demo settings give equal demos (reused)
        self.demos: tuple[Transitions, dict[str, float]] | None = None

    def prepare(self) -> str:
        """Build the learner and publish snapshot 0; returns the snapshot directory (the candidate's checkpoint)."""
        from enpire.policy.rl_learner import Learner

        t0 = time.perf_counter()
        residual = bool(self.recipe["residual"])
        self.learner = Learner(observation_size(self.spec, residual), self.recipe, seed=self.seed,
                               device=self.device, init_from=self.init_from,
                               base_params=base_params(self.spec) if residual else None)
        self.learner.publish(self.snapshots)
        self.busy_s += time.perf_counter() - t0
        return str(self.snapshots)

    def _ingest(self) -> int:
        added = 0
        for record in self.stream.drain():
            data = from_trajectory(record.trajectory, record, self.recipe,  # type: ignore[arg-type]
                                   lambda: base_policy(self.spec))
            self.learner.add(data)
            self.trials_ingested += 1
            added += len(data)
        self.online_transitions += added
        return added

    def _step(self, steps: int, chunk: int = 50) -> int:
        """Up to `steps` gradient steps in chunks, stopping once the trainer allowance (or the session) is spent."""
        done = 0
        while done < steps and not self.hurry.is_set() and not self.out_of_budget(self.busy_s):
            room = max(0.0, self.budget_s - self.busy_s) / max(self._per_step(), 1e-4)
            n = int(min(chunk, steps - done, max(1.0, room)))
            self.busy_s += self.learner.update(n)
            done += n
        return done

    def _per_step(self) -> float:
        return self.learner.busy_s / self.learner.updates if self.learner.updates else 0.0

    def run(self, stop: threading.Event, tracking: Any = None) -> tuple[str, float, dict[str, float]]:
        """The job's body on the slot's thread; returns (checkpoint, trainer seconds, metrics)."""
        t0 = time.perf_counter()
        if self.demos is None:  # the slot hands over the session's demos when an earlier job collected the same
            self.demos = demo_transitions(self.spec, self.recipe, self.demo_seed, self.out)
        demos, stats = self.demos
        self.metrics.update(stats, demo_transitions=float(len(demos)))
        if len(demos):
            self.learner.add(demos, demo=True)
        self.busy_s += time.perf_counter() - t0
        if self.learner.has_data():
            self._step(int(self.recipe["pretrain_steps"]))
            self.learner.publish(self.snapshots)
        owed, since_publish = 0.0, 0
        publish_every, utd = int(self.recipe["publish_every"]), float(self.recipe["utd_ratio"])
        while not stop.is_set():
            t1 = time.perf_counter()
            added = self._ingest()
            self.busy_s += time.perf_counter() - t1
            owed += utd * added
            if owed >= 1.0 and not self.out_of_budget(self.busy_s):
                steps = self._step(int(min(owed, publish_every - since_publish)))
                owed -= steps
                since_publish += steps
                if since_publish >= publish_every:
                    self.learner.publish(self.snapshots)
                    since_publish = 0
            else:
                stop.wait(0.05)
        owed += utd * self._ingest()
        # the candidate's trials are all back: learn what they still owe, for the checkpoint a later iteration
        # warm-starts from (within the trainer allowance; the session ending stops it)
        since_publish += self._step(int(owed))
        if since_publish:
            self.learner.publish(self.snapshots)
        checkpoint = self.learner.save(self.out / "rl.zip")
        self.metrics.update(updates=float(self.learner.updates), snapshots=float(self.learner.published),
                            online_transitions=float(self.online_transitions),
                            trials_ingested=float(self.trials_ingested),
                            trials_without_data=float(self.stream.without_data), trainer_seconds=self.busy_s,
                            **{f"last_{k}": v for k, v in self.learner.last_losses.items()})
        if tracking is not None:
            log_checkpoint(tracking, checkpoint, self.recipe, self.metrics, self.learner)
        return checkpoint, self.busy_s, dict(self.metrics)


def log_checkpoint(tracking: Any, checkpoint: str, recipe: dict[str, Any], metrics: dict[str, float],
                   learner: Any) -> None:
    """The kept-able checkpoint as the iteration's artifact and as an MLflow model with a signature."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking.uri)
    client.log_artifact(tracking.run_id, checkpoint, artifact_path="checkpoint")
    for k, v in metrics.items():
        client.log_metric(tracking.run_id, f"train_{k}", float(v))
    for k, v in recipe.items():
        client.log_param(tracking.run_id, f"rl.{k}", str(v)[:500])
    from enpire.policy.rl_model import log_actor_model

    log_actor_model(tracking.uri, tracking.run_id, checkpoint, learner)
