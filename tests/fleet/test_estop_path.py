"""Each session's station workers map that session's estop flag, even when a forkserver started by an earlier
session of the same process (a multirun, a test run) keeps the earlier session's environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from enpire.fleet.local import LocalExecutor
from enpire.records import Candidate, TrialRequest
from enpire.spec import load_spec
from enpire.world.estop import ESTOP_ENV


def _estopped_trial(tmp_path: Path, flag: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(ESTOP_ENV, str(flag))
    spec = load_spec(["task=reach", "executor=local", "executor.start_method=forkserver", "video.enabled=false"])
    executor = LocalExecutor(spec)
    executor.start()
    try:
        executor.submit(0, TrialRequest("t", 0, 1, Candidate("c", params=spec.policy.defaults()),
                                        out_dir=str(tmp_path)))
        records = []
        while not records:
            records = executor.wait(1.0)
        return records[0].outcome
    finally:
        executor.close()


def test_a_later_session_in_the_same_process_maps_its_own_estop_flag(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first.flag", tmp_path / "second.flag"
    first.write_bytes(b"\x00")
    second.write_bytes(b"\x01")  # the second session's operator has pressed estop
    assert _estopped_trial(tmp_path, first, monkeypatch) != "estopped"
    first.unlink()  # the first session is over and its control directory gone
    assert _estopped_trial(tmp_path, second, monkeypatch) == "estopped"
    assert os.environ[ESTOP_ENV] == str(second)
