"""The station's side of the estop: a one-byte flag every station maps, and the stop it causes.

The operator's control channel (enpire.ops.control) creates the flag file in the session's control
directory and names it in ESTOP_ENV before the stations start; `python -m enpire.ctl estop` writes
the byte. A station reads it at every control step (a memory read) and stops its robot through the
envelope's safe stop, whatever the loop is doing: the estop always runs where the robot is.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import time
from typing import Any

from enpire.records import SafetyEvent

log = logging.getLogger(__name__)

ESTOP_ENV = "ENPIRE_ESTOP_FLAG"  # path of the flag file; stations (inline or worker processes) map it at creation
_NO_FLAG = bytes(1)  # stands in for the flag when a station runs outside a controlled session
MAP_RETRY_S = 2.0  # how long a station retries mapping its session's flag before it refuses to start


class EstopUnavailable(RuntimeError):
    """The session names an estop flag this station cannot map: it refuses to start rather than ignore estop."""


def estop_flag(path: str | None = None) -> Any:
    """The station's view of the estop flag: an object whose `[0]` is nonzero once estop was sent.

    A read-only shared mmap of the 1-byte file, so the ctl's write is visible at the next read in every
    process; without a controlled session a constant zero byte (the check costs the same).
    """
    path = path if path is not None else os.environ.get(ESTOP_ENV)
    if not path:
        return _NO_FLAG
    deadline = time.monotonic() + MAP_RETRY_S
    while True:
        try:
            with open(path, "rb") as fh:
                return mmap.mmap(fh.fileno(), 1, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as error:
            # the control directory is renamed once the session's run exists (enpire.ops.control.adopt): a station
            # booting in that instant finds neither name for a moment; past the retries it must not run unstoppable
            if time.monotonic() >= deadline:
                raise EstopUnavailable(f"estop flag {path} cannot be mapped ({error}): a station that cannot be "
                                       "stopped does not start") from None
            time.sleep(0.01)


def estop_stop(station: Any, step: int, started_at: float, previous_check_at: float) -> SafetyEvent:
    """Stop the station's robot now (the envelope's safe stop) and describe it as a SafetyEvent `estop`.

    value = wall-clock time the flag was seen; the detail carries the rollout's start time, so a reader can
    compute the mean control-step duration; `previous_check_at` is the wall time just before the previous read
    of the flag (which found it unset). The sender stamps `written_at` before writing the byte and
    `flushed_at` once it is visible: previous_check_at <= flushed_at and written_at <= seen_at prove that the
    read that saw it was the first one after the write landed, so at most one control step ran after it.
    """
    seen_at = time.time()
    station._envelope.stop(station.scene.data)
    return SafetyEvent(kind="estop", step=step, value=seen_at, limit=None,
                       detail=json.dumps({"seen_at": seen_at, "rollout_started_at": started_at, "step": step,
                                          "previous_check_at": previous_check_at}))
