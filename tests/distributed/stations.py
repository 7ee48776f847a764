"""Station factories the distributed tests start inside Ray actors: real SimStations with one test hook.

`held_station`: on node `b` (ENPIRE_TEST_NODE), once the file named by ENPIRE_TEST_HOLD exists, the next trial
writes its id to ENPIRE_TEST_HOLD + ".held" and then blocks (a trial in flight for as long as the test needs to
kill its node). Elsewhere, and before the hold file exists, it is an ordinary station.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from enpire.fleet.stations import make_station
from enpire.records import TrialRecord, TrialRequest
from enpire.spec.model import ExperimentSpec

HOLD_ENV = "ENPIRE_TEST_HOLD"
HOLD_S = 120.0
FACTORY = f"{__name__}:held_station"


class _Held:
    def __init__(self, spec: ExperimentSpec, index: int) -> None:
        self._station = make_station(spec, index)
        self.index = index
        self._hold = os.environ.get(HOLD_ENV) if os.environ.get("ENPIRE_TEST_NODE") == "b" else None

    @property
    def faulty(self) -> bool:
        return self._station.faulty

    @property
    def reset_problems(self) -> list[str]:
        return self._station.reset_problems

    def recheck_reset(self, seed: int) -> bool:
        return self._station.recheck_reset(seed)

    def run_trial(self, request: TrialRequest) -> TrialRecord:
        if self._hold and Path(self._hold).exists():
            Path(self._hold + ".held").write_text(request.trial_id)
            time.sleep(HOLD_S)  # the node is killed meanwhile
        return self._station.run_trial(request)

    def close(self) -> None:
        self._station.close()


def held_station(spec: ExperimentSpec, index: int) -> _Held:
    return _Held(spec, index)


class _CheckpointReader:
    """Reads a bc candidate's checkpoint the way a bc policy would (by its path) and reports what it found:
    `reason` = "<sha256 of the bytes> <path>". No physics: this checks the transport, not the policy."""

    faulty = False

    def __init__(self, spec: ExperimentSpec, index: int) -> None:
        self.index = index
        self.reset_problems: list[str] = []

    def run_trial(self, request: TrialRequest) -> TrialRecord:
        import hashlib

        path = Path(request.candidate.checkpoint or "")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return TrialRecord(trial_id=request.trial_id, iteration=request.iteration, station=self.index,
                           seed=request.seed, outcome="failure", attempts=1, success_attempt=None, pass_at_1=False,
                           pass_at_k=False, robot_seconds=0.0, wall_s=0.0, steps=0, clamps=0,
                           reason=f"{digest} {path}")

    def recheck_reset(self, seed: int) -> bool:
        return True

    def close(self) -> None:
        pass


def checkpoint_reader(spec: ExperimentSpec, index: int) -> _CheckpointReader:
    return _CheckpointReader(spec, index)
