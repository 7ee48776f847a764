"""Stations pick the learner's snapshots up between trials, never mid-trial; snapshot 0 of a residual learner
is the tuned scripted baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from enpire.fleet.stations import make_station
from enpire.policy.rl import RLPolicy, latest_snapshot
from enpire.records import Candidate, TrialRequest
from enpire.spec import ExperimentSpec
from tests.rl.conftest import prepare


def _trial(station, spec: ExperimentSpec, directory: str, seed: int, tmp: Path, name: str):  # type: ignore[no-untyped-def]
    policy = RLPolicy(spec, directory)  # what make_policy builds when the station starts the trial
    request = TrialRequest(name, 0, seed, Candidate("c", kind="rl", checkpoint=directory), record_trajectory=True,
                           out_dir=str(tmp))
    record = station.run_trial(request, policy=policy)
    return policy, record, np.load(record.trajectory)["actions"]


def test_a_snapshot_published_mid_trial_is_used_from_the_next_trial(rl_spec: ExperimentSpec, tmp_path: Path) -> None:
    job, directory = prepare(rl_spec, tmp_path / "learner")
    published: list[int] = []

    def publish_mid_trial(model, data) -> None:  # type: ignore[no-untyped-def]  # the station's per-step hook
        if len(published) == 0 and data.time > 0.5:
            with torch.no_grad():
                job.learner.model.actor.mu.bias.fill_(0.8)  # a very different policy: a large constant residual
            published.append(job.learner.publish(directory) and 1)

    reference_station = make_station(rl_spec, 0)
    _, _, reference = _trial(reference_station, rl_spec, directory, 7, tmp_path, "reference")
    reference_station.close()

    station = make_station(rl_spec, 0, step_hook=publish_mid_trial)
    try:
        first, _, actions = _trial(station, rl_spec, directory, 7, tmp_path, "first")
        assert published and latest_snapshot(directory)[0] == 1  # type: ignore[index]
        assert first.version == 0
        np.testing.assert_array_equal(actions, reference)  # the whole trial ran snapshot 0
        second, _, later = _trial(station, rl_spec, directory, 7, tmp_path, "second")
        assert second.version == 1
        n = min(len(later), len(reference))
        assert np.abs(later[:n, :3] - reference[:n, :3]).max() > 0.01  # the next trial runs the new snapshot
    finally:
        station.close()


def test_snapshot_zero_of_a_residual_learner_acts_as_the_scripted_baseline(rl_spec: ExperimentSpec,
                                                                           tmp_path: Path) -> None:
    from enpire.policy.rl import base_policy

    _, directory = prepare(rl_spec, tmp_path / "learner", {"explore": False})
    station = make_station(rl_spec, 0)
    try:
        _, rl_record, rl_actions = _trial(station, rl_spec, directory, 11, tmp_path, "rl")
        scripted = station.run_trial(TrialRequest("scripted", 0, 11, Candidate("s"), record_trajectory=True,
                                                  out_dir=str(tmp_path)), policy=base_policy(rl_spec))
    finally:
        station.close()
    np.testing.assert_allclose(rl_actions, np.load(scripted.trajectory)["actions"], atol=1e-9)
    assert rl_record.outcome == scripted.outcome == "success"
