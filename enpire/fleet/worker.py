"""A station worker process: builds one station and runs the trials its parent sends.

Protocol on the pipe (parent <-> worker), all messages are tuples:
  worker -> parent: ("ready", pid) | ("record", TrialRecord, faulty: bool) | ("rechecked", ok, problems)
                    | ("error", text)
  parent -> worker: TrialRequest | ("recheck", seed) (verify a reset after a person's fix) | None (close, exit)
The physics lives here, so a segfault or a hung simulation kills only this process; the
parent records the trial in flight as `crash` and starts a fresh worker.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from multiprocessing.connection import Connection

from enpire.fleet.executor import crash_record, load_factory
from enpire.spec.model import ExperimentSpec
from enpire.world.estop import ESTOP_ENV

log = logging.getLogger(__name__)


def worker_main(conn: Connection, spec: ExperimentSpec, index: int, factory: str,
                estop_path: str | None = None) -> None:
    """`estop_path`: this session's estop flag (None: no controlled session); given by argument because a
    forkserver started by an earlier session of the process keeps that session's environment."""
    if estop_path:
        os.environ[ESTOP_ENV] = estop_path
    else:
        os.environ.pop(ESTOP_ENV, None)
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    try:
        station = load_factory(factory)(spec, index)
    except Exception:
        conn.send(("error", f"station {index} failed to start:\n{traceback.format_exc()}"))
        conn.close()
        return
    conn.send(("ready", os.getpid()))
    try:
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):
                break
            if request is None:
                break
            if isinstance(request, tuple):  # ("recheck", seed): a person fixed the scene (enpire.fleet.human_reset)
                try:
                    ok, problems = station.recheck_reset(int(request[1])), station.reset_problems
                except Exception as error:  # the check failed; the station keeps waiting for the person
                    log.exception("station %d raised during the reset check", index)
                    ok, problems = False, [f"the reset check raised {error!r}"]
                conn.send(("rechecked", ok, problems))
                continue
            started = time.monotonic()
            try:
                record = station.run_trial(request)
            except Exception as error:
                log.exception("station %d raised during %s", index, request.trial_id)
                record = crash_record(request, index, time.monotonic() - started, f"station raised: {error!r}")
            conn.send(("record", record, bool(station.faulty)))
    finally:
        try:
            station.close()
        finally:
            conn.close()
