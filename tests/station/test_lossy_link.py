"""A fleet=2 remote session through a lossy link of our own (tests/station/proxy.py: every chunk delayed, every
connection cut at a random moment, seeded) reaches /done, and no trial is counted twice and none is lost: the
journal's trials are unique, each one the runner did not give up on (crash) is the record the station stored for
it, and every trial a station ran is in the journal (bar the one in flight at /done, at most one per station)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from enpire.station.client import StationClient, StationError
from enpire.station.service import KEEP_RECORDS
from tests.station.proxy import LossyProxy
from tests.station.support import ROOT, TOKEN, env, servers

pytestmark = pytest.mark.slow

SPEC = ["task=drawer", "fleet=2", "video.enabled=false", "seed=3", "executor=remote",
        "executor.max_restarts=0",  # a cut is bridged by the link's reconnect; it must not cost a restart
        "executor.connect_timeout_s=5.0", "executor.station_timeout_s=5.0"]  # a reconnect may take a while


def test_lossy_link_neither_doubles_nor_loses_a_trial(tmp_path: Path) -> None:
    stations = servers(tmp_path, 2, realtime=20.0)  # a drawer trial lasts ~0.2-0.5 s: cuts land mid-trial too
    proxies = [LossyProxy(s.address, seed=11 + i, delay_s=(0.0, 0.02), drop_per_s=2.0).start()
               for i, s in enumerate(stations)]
    try:
        run_dir = tmp_path / "lossy"
        addresses = ",".join(p.address for p in proxies)
        r = subprocess.run([sys.executable, "-m", "enpire", *SPEC, f"executor.stations=[{addresses}]",
                            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifact_root={tmp_path}/art",
                            f"hydra.run.dir={run_dir}", f"supervision.control_root={tmp_path}/control",
                            "session.name=lossy"], cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        figures = [p.figures() for p in proxies]
        summary = dict(line.split(": ", 1) for line in r.stdout.splitlines()
                       if ": " in line and not line.startswith("["))
        assert summary["reached_done"] == "true", r.stdout[-2000:]
        rows = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines() if line.strip()]
        trials = [row["record"] for row in rows if row["kind"] == "trial"]
        ids = Counter(t["trial_id"] for t in trials)
        assert not [k for k, n in ids.items() if n > 1], "a trial counted twice"

        clients = [StationClient(s.address, TOKEN) for s in stations]  # straight to the stations, no proxy
        ran = [c.health()["trials"] for c in clients]
        found = [0, 0]
        crashes = []
        # a station keeps its last KEEP_RECORDS records for re-delivery; older ones are checked by count only
        per_station = [[t["trial_id"] for t in trials if t["station"] == i] for i in range(2)]
        kept = {tid for ids_ in per_station for tid in ids_[-KEEP_RECORDS:]}
        evicted = [len(ids_[:-KEEP_RECORDS]) for ids_ in per_station]
        for t in trials:
            if t["trial_id"] not in kept:
                continue
            try:
                stored = clients[t["station"]].record(t["trial_id"])["record"]
            except StationError:
                stored = None
            if t["outcome"] == "crash":
                crashes.append(t["trial_id"])  # the runner gave up on it; if the station ran it, it ran once
                found[t["station"]] += stored is not None
                continue
            assert stored is not None, f"trial {t['trial_id']} journaled but station {t['station']} never ran it"
            found[t["station"]] += 1
            for key in ("trial_id", "seed", "outcome", "steps", "attempts", "robot_seconds"):
                assert stored[key] == t[key], (t["trial_id"], key)
        # every trial a station ran is in the journal; the one in flight when /done was met may not be
        lost = [n - f - e for n, f, e in zip(ran, found, evicted, strict=True)]
        assert all(0 <= k <= 1 for k in lost), (ran, found)
        log = (run_dir / "__main__.log").read_text().splitlines()
        mid_trial = sum(1 for line in log if "reconnecting for trial" in line)
        idle = sum(1 for line in log if "reconnecting (idle)" in line)
        restarts = sum(1 for line in log if "; restart " in line)
        estopped = sum(1 for t in trials if t["outcome"] == "estopped")
        print(f"\n[figure] lossy link: {len(trials)} trials journaled, stations ran {ran}, crashes {len(crashes)}, "
              f"estopped by the dead-man on a cut {estopped}, reconnects mid-trial {mid_trial}, idle {idle}, "
              f"link restarts {restarts}, proxy {figures}")
        assert sum(f["drops"] for f in figures) >= 5 and mid_trial >= 3  # the link really was lossy
        assert not crashes, crashes  # every cut was bridged by a reconnect: the runner never had to give up
        assert restarts == 0  # nor did a cut cost a restart (executor.max_restarts)
    finally:
        for p in proxies:
            p.stop()
        for s in stations:
            s.stop()
