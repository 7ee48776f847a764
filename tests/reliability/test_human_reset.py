"""The human in the loop where automatic reset fails (supervision.human_reset, enpire.fleet.human_reset).

End to end on a real session: two station worker processes (executor=local) whose resets fail until a file
exists (`task.reset.blocked_until`, per station), MLflow on SQLite, and a person at another terminal using
real `python -m enpire.ctl` processes. Both stations end up waiting for the person; a reset-done before the
scene is fixed is checked and refused (the station keeps waiting); after the fix it returns the station to the
rotation, which then runs trials again; the session reaches /done. The waits are reported apart from robot time.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.fleet.support import migrated_store, run, spec_of, store
from tests.test_ctl import ctl, state_of

__all__ = ["migrated_store", "store"]

pytestmark = pytest.mark.slow


def _waiting(state: dict[str, Any]) -> set[int]:
    return {int(k) for k in state.get("needs_reset", {})}


class Person:
    """Waits for stations to ask, tries reset-done too early, fixes the scenes, and says reset-done again."""

    def __init__(self, root: Path, flags: Path) -> None:
        self.root, self.flags = root, flags
        self.log: list[tuple[str, int, str, dict[str, Any]]] = []
        self.fixed_at: dict[int, float] = {}
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _state(self, until: Any, timeout_s: float = 120.0) -> tuple[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = state_of(self.root)
            if found and until(found[1]):
                return found
            time.sleep(0.05)
        raise TimeoutError(f"state never came: last {state_of(self.root)}")

    def _ctl(self, *args: str) -> str:
        session, state = self._state(lambda s: True)
        out = ctl(args[0], session, *args[1:], "--control-root", str(self.root), "--by", "test-person")
        self.log.append((args[0], out.returncode, out.stdout + out.stderr, state))
        return out.stdout + out.stderr

    def _work(self) -> None:
        self._state(lambda s: _waiting(s) == {0, 1})
        self._ctl("status")
        self._ctl("reset-done", "1")  # the scene is not fixed yet: the check fails, station 1 keeps waiting
        time.sleep(1.5)
        (self.flags / "fixed-1").touch()
        self.fixed_at[1] = time.time()
        self._ctl("reset-done", "1")
        self._state(lambda s: _waiting(s) == {0})  # station 0 waits on while station 1 works
        (self.flags / "fixed-0").touch()
        self.fixed_at[0] = time.time()
        self._ctl("reset-done", "0")
        self._state(lambda s: not _waiting(s) or s.get("state") == "ended")


def test_stations_wait_for_a_person_and_return_after_reset_done(store: list[str], tmp_path: Path) -> None:
    root, flags = tmp_path / "control", tmp_path / "flags"
    flags.mkdir()
    spec = spec_of(*store, "task=reach", "executor=local", "fleet=2", "supervision.human_reset=true",
                   f'task.reset.blocked_until="{flags}/fixed-{{station}}"', f"supervision.control_root={root}",
                   "budget.wall_clock_s=300")
    person = Person(root, flags)
    code, summary, text = run(spec, tmp_path / "run")
    person.thread.join(timeout=10)
    assert code == 0, text
    assert summary["reached_done"] == "true", text
    status, early, late, last = person.log
    assert status[0] == "status" and status[1] == 0
    shown = json.loads(status[2])["needs_reset"]
    assert set(shown) == {"0", "1"} and "blocked until" in shown["1"]["problems"][0], shown
    assert early[0] == "reset-done" and early[1] == 0 and late[1] == 0 and last[1] == 0

    assert summary["human_interventions"] == "2" and summary["faulty_stations"] == "0"
    waited = float(summary["human_wait_s"])
    assert waited >= 2 * 1.5, summary  # each station waited through the person's 1.5 s before the fix
    run_data = MlflowClient(tracking_uri=spec.tracking.uri).get_run(summary["session_id"]).data
    assert run_data.metrics["human_interventions"] == 2 and run_data.metrics["human_wait_s"] == waited

    journal = [json.loads(line) for line in (tmp_path / "run/journal.jsonl").read_text().splitlines()]
    trials = [j["record"] for j in journal if j.get("kind") == "trial"]
    after = {s: [t for t in trials if t["station"] == s and t["outcome"] != "reset_failed"] for s in (0, 1)}
    assert after[0] and after[1], "both stations ran trials again after the person's reset-done"
    failed = [t for t in trials if t["outcome"] == "reset_failed"]
    assert len(failed) == 2 * spec.task.reset.faulty_after  # only the resets before each station asked
    assert all(t["robot_seconds"] == 0 for t in failed)
    interventions = json.loads((tmp_path / "run/human_interventions.json").read_text())["interventions"]
    logged = MlflowClient(tracking_uri=spec.tracking.uri).download_artifacts(summary["session_id"],
                                                                             "human_interventions.json", str(tmp_path))
    assert json.loads(Path(logged).read_text())["interventions"] == interventions
    by_station = {e["station"]: e for e in interventions}
    assert by_station[1]["outcome"] == by_station[0]["outcome"] == "returned"
    assert [c["ok"] for c in by_station[1]["checks"]] == [False, True]
    assert by_station[1]["checks"][0]["by"] == "test-person"
    assert "blocked until" in by_station[1]["checks"][0]["problems"][0]
