"""The human in the loop where automatic reset fails (supervision.human_reset, docs/stations.md).

A station whose verified reset failed `task.reset.faulty_after` times in a row stops being a robot the
fleet can use. Without a person it leaves the session (faulty). With `supervision.human_reset: true` it
waits for one instead (`needs_reset`): the progress display and `enpire.ctl status` show it, a person fixes
the scene and runs `python -m enpire.ctl reset-done SESSION_ID STATION`, the station verifies a reset again
and, when that passes, is back in the rotation; when it does not, it keeps waiting with the new problems.
A station nobody comes to within `supervision.human_reset_timeout_s` leaves the fleet as faulty.

The `PersonDesk` keeps the interventions (one per time a station asked) with their wall-clock wait: the
wait is not robot time and is reported apart (`human_interventions`, `human_wait_s` in the summary). The
re-check reset is not a trial: no record, no robot-seconds, no evidence for the judge. Nothing a person does
during an intervention is ever counted as the policy's.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 120.0  # a reset check with no verdict by then failed (its station hung or died)


@dataclass
class Intervention:
    """One time one station asked for a person."""

    station: int
    asked_at: float  # wall clock (time.time())
    problems: list[str]
    trial_id: str  # the trial whose reset failed the last time
    checks: list[dict[str, Any]] = field(default_factory=list)  # each reset-done: at, by, ok, problems
    ended_at: float | None = None
    outcome: str = "waiting"  # waiting | returned (back in the rotation) | timed_out | session_ended

    def wait_s(self, now: float | None = None) -> float:
        end = self.ended_at if self.ended_at is not None else (time.time() if now is None else now)
        return max(0.0, end - self.asked_at)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "wait_s": round(self.wait_s(), 3)}


class PersonDesk:
    """The interventions of one executor's stations, and which stations wait for a person now."""

    def __init__(self, enabled: bool, timeout_s: float, seed: int) -> None:
        self.enabled = enabled
        self.timeout_s = timeout_s
        self._seed = seed
        self.log: list[Intervention] = []
        self._open: dict[int, Intervention] = {}
        self._checking: dict[int, tuple[str, float]] = {}  # station -> (by, when) of a re-check under way

    @classmethod
    def from_spec(cls, spec: ExperimentSpec) -> PersonDesk:
        sup = dict(spec.resolved.get("supervision") or {})
        return cls(bool(sup.get("human_reset", False)), float(sup.get("human_reset_timeout_s", 3600.0)), spec.seed)

    def ask(self, station: int, trial_id: str, problems: list[str]) -> None:
        entry = Intervention(station, time.time(), list(problems), trial_id)
        self.log.append(entry)
        self._open[station] = entry
        log.warning("station %d needs a person: its reset failed (%s); after fixing the scene run "
                    "python -m enpire.ctl reset-done SESSION_ID %d", station, "; ".join(problems) or "no reason given",
                    station)

    def waiting(self) -> dict[int, dict[str, Any]]:
        """Station -> what it waits with (since, problems, checking) for the display and ctl status."""
        return {i: {"since": e.asked_at, "problems": e.problems, "checking": i in self._checking,
                    "wait_s": round(e.wait_s(), 1)} for i, e in self._open.items()}

    def begin_check(self, station: int, by: str) -> tuple[int, str | None]:
        """A person says station `station` is fixed: (seed of the re-check reset, None), or (0, why not)."""
        if station not in self._open:
            waiting = sorted(self._open) or "none"
            return 0, f"station {station} is not waiting for a person (waiting: {waiting})"
        if station in self._checking:
            return 0, f"station {station}: a reset check is already under way"
        self._checking[station] = (by, time.time())
        entry = self._open[station]
        return self._seed * 1_000_003 + station * 7_919 + len(entry.checks) + 1, None

    def checked(self, station: int, ok: bool, problems: list[str]) -> bool:
        """The re-check's verdict; True when the station is back in the rotation."""
        by, at = self._checking.pop(station, ("?", time.time()))
        entry = self._open.get(station)
        if entry is None:
            return False
        entry.checks.append({"at": at, "by": by, "ok": ok, "problems": list(problems)})
        if ok:
            self._close(station, "returned")
            log.warning("station %d is back in the rotation after %.0f s waiting for a person", station,
                        entry.wait_s())
        else:
            entry.problems = list(problems)
            log.warning("station %d: the reset check after reset-done failed (%s); it keeps waiting", station,
                        "; ".join(problems))
        return ok

    def expired(self, now: float | None = None) -> list[int]:
        """Stations that waited longer than the timeout (each closed `timed_out`; the caller retires them)."""
        now = time.time() if now is None else now
        out = [i for i, e in self._open.items() if i not in self._checking and now - e.asked_at > self.timeout_s]
        for i in out:
            self._close(i, "timed_out")
        return out

    def stale_checks(self, now: float | None = None) -> list[int]:
        """Stations whose reset check gave no verdict within CHECK_TIMEOUT_S (the caller fails the check)."""
        now = time.time() if now is None else now
        return [i for i, (_, at) in self._checking.items() if now - at > CHECK_TIMEOUT_S]

    def forget(self, station: int, why: str) -> None:
        """The station was restarted or left the fleet while it waited: its intervention ends (`why`); a restarted
        station that still cannot reset asks again."""
        self._checking.pop(station, None)
        if station in self._open:
            self._close(station, why)

    def end(self) -> None:
        """The session ends: open interventions close as `session_ended`."""
        for i in list(self._open):
            self._close(i, "session_ended")
        self._checking.clear()

    def _close(self, station: int, outcome: str) -> None:
        entry = self._open.pop(station)
        entry.ended_at, entry.outcome = time.time(), outcome


INTERVENTIONS_FILE = "human_interventions.json"


def write_interventions(run_dir: str | Path, interventions: list[dict[str, Any]]) -> Path | None:
    """`<run_dir>/human_interventions.json` (the MLflow session run gets it too), when a station asked at all."""
    if not interventions:
        return None
    path = Path(run_dir) / INTERVENTIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"interventions": interventions}, indent=1, sort_keys=True))
    return path
