"""`python -m enpire.ctl estop SESSION_ID` reaches remote stations by itself: the ctl reads the session's
control directory (remote_stations.json, written by the remote executor beside the estop flag) and tells every
station directly. The runner is frozen (SIGSTOP) before the command, so it can neither forward the flag nor
stop sending heartbeats in time to matter (the stations' dead-man time is set long): only the ctl path can stop
the robots. Latency measured from the command to the robot stopped (the estop safety event of each trial)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from enpire.station.client import StationClient, StationError
from enpire.station.protocol import record_from_json
from tests.station.support import ROOT, TOKEN, env, servers, wait_for

pytestmark = pytest.mark.slow


def _record(client: StationClient, trial_id: str) -> dict | None:
    try:
        return client.record(trial_id)
    except StationError:
        return None


def test_ctl_estop_reaches_remote_stations_through_the_control_dir(tmp_path: Path) -> None:
    stations = servers(tmp_path, 2, realtime=1.0, watchdog_s=10.0)
    clients = [StationClient(s.address, TOKEN) for s in stations]
    control = tmp_path / "control"
    run_dir = tmp_path / "run"
    session = subprocess.Popen(
        [sys.executable, "-m", "enpire", "task=drawer", "fleet=2", "video.enabled=false", "seed=3",
         "executor=remote", f"executor.stations=[{','.join(s.address for s in stations)}]",
         f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifact_root={tmp_path}/art",
         f"hydra.run.dir={run_dir}", f"supervision.control_root={control}", "session.name=ctl-estop"],
        cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    frozen = False
    try:
        directory = wait_for(lambda: next((p.parent for p in control.glob("*/remote_stations.json")), None),
                             timeout=120, every=0.05)
        assert json.loads((directory / "remote_stations.json").read_text())["stations"] == \
            [s.address for s in stations]
        session_id = json.loads((directory / "session.json").read_text())["session_id"]
        assert directory.name == session_id
        wait_for(lambda: all(c.health()["busy"] for c in clients), timeout=60, every=0.02)
        os.kill(session.pid, signal.SIGSTOP)  # the runner can no longer forward anything
        frozen = True
        busy = [c.health()["busy"] for c in clients]
        assert all(busy), busy
        sent_at = time.time()
        ctl = subprocess.run([sys.executable, "-m", "enpire.ctl", "estop", session_id, "--control-root",
                              str(control)], cwd=ROOT, env=env(), capture_output=True, text=True, timeout=60)
        ctl_s = time.time() - sent_at
        assert ctl.returncode == 0, ctl.stderr
        assert ctl.stdout.count("estop sent to remote station") == 2, ctl.stdout + ctl.stderr
        stops = []
        for client, trial_id in zip(clients, busy, strict=True):  # while the runner is still frozen
            doc = wait_for(lambda c=client, t=trial_id: _record(c, t), timeout=10, every=0.01)
            record = record_from_json(doc["record"])
            assert record.outcome == "estopped", record.reason
            [event] = [e for e in record.safety_events if e.kind == "estop"]
            detail = json.loads(event.detail)
            assert detail["cause"] == "estop" and "enpire.ctl" in detail["why"], detail
            stops.append((float(event.value) - sent_at, float(event.value) - detail["tripped_at"]))
            assert client.health()["estopped"]  # latched
        os.kill(session.pid, signal.SIGCONT)
        frozen = False
        out, err = session.communicate(timeout=180)
        assert session.returncode == 0, err[-3000:]
        summary = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line and not line.startswith("["))
        assert summary["stopped_by"] == "estop", summary
        rows = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines() if line.strip()]
        journaled = {row["record"]["trial_id"]: row["record"]["outcome"] for row in rows if row["kind"] == "trial"}
        assert all(journaled.get(t) == "estopped" for t in busy), (busy, journaled)
        worst, step = max(s[0] for s in stops), max(s[1] for s in stops)
        print(f"\n[figure] ctl estop -> robots stopped, worst of 2 remote stations: {worst * 1e3:.0f} ms "
              f"(the ctl process took {ctl_s * 1e3:.0f} ms in all; station got the estop -> robot stopped: "
              f"{step * 1e3:.1f} ms)")
        assert worst < ctl_s + 0.1
    finally:
        if frozen:
            os.kill(session.pid, signal.SIGCONT)
        if session.poll() is None:
            session.kill()
            session.communicate()
        for s in stations:
            s.stop()
