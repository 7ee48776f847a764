"""Bench `remote`: stations as network services (`python -m enpire.station serve`, on loopback) against worker
processes, at fleet 2.

Two station servers are started as subprocesses (a private token), both fleets stay up, and rounds of the same
trials (same candidate, same seeds) alternate between executor=local and executor=remote (medians reported);
throughput counts from the first dispatch to the last record of a round. `mru` is busy station-seconds over
(stations x round wall): how well each backend keeps its stations fed. `remote_over_local` is remote trials/s
over local trials/s (goal >= 0.9); `same_outcomes` is 1.0 when every trial had the same outcome on both.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from enpire.bench import bench
from enpire.bench.ray_overhead import _requests, _run
from enpire.fleet.executors import make_executor
from enpire.spec import load_spec

log = logging.getLogger(__name__)

FLEET = 2
READY = re.compile(r"enpire\.station: serving \S+ on (\S+:\d+)")


def _serve(work: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "enpire.station", "serve", "task=drawer", "--port", "0",
                             "--work-dir", str(work)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if m := READY.search(line):
            return proc, m.group(1)
    raise RuntimeError(f"bench remote: station server exited ({proc.wait()}) before serving")


@bench("remote", "executor=remote (station servers on loopback) vs executor=local: trials/s and MRU at fleet 2")
def remote(quick: bool) -> dict[str, float]:
    trials, rounds = (12, 2) if quick else (30, 4)
    token = secrets.token_hex(16)
    old = os.environ.get("ENPIRE_STATION_TOKEN")
    os.environ["ENPIRE_STATION_TOKEN"] = token
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
    procs: list[subprocess.Popen[str]] = []
    executors = {}
    res: dict[str, dict[str, list[float]]] = {k: {"rate": [], "mru": []} for k in ("local", "remote")}
    outcomes: dict[str, dict[tuple[str, int], str]] = {"local": {}, "remote": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="enpire-bench-remote-") as out_dir:
            addresses = []
            for i in range(FLEET):
                proc, address = _serve(Path(out_dir) / f"station{i}", env)
                procs.append(proc)
                addresses.append(address)
            for kind in ("local", "remote"):
                extra = [f"executor.stations=[{','.join(addresses)}]"] if kind == "remote" else []
                spec = load_spec(["task=drawer", f"fleet={FLEET}", f"executor={kind}", "video.enabled=false", *extra])
                executors[kind] = (spec, make_executor(spec))
                executors[kind][1].start()
                _run(executors[kind][1], _requests(spec, "warm", FLEET, out_dir, seed0=10_000))
            for r in range(rounds):
                for kind in (("local", "remote") if r % 2 == 0 else ("remote", "local")):
                    spec, executor = executors[kind]
                    busy0 = sum(executor.busy_seconds())
                    wall, got = _run(executor, _requests(spec, f"r{r}-", trials, out_dir, seed0=0))
                    res[kind]["rate"].append(len(got) / wall)
                    res[kind]["mru"].append((sum(executor.busy_seconds()) - busy0) / (FLEET * wall))
                    outcomes[kind].update({(x.trial_id, x.seed): x.outcome for x in got})
    finally:
        for _, executor in executors.values():
            executor.close()
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        if old is None:
            os.environ.pop("ENPIRE_STATION_TOKEN", None)
        else:
            os.environ["ENPIRE_STATION_TOKEN"] = old
    out: dict[str, float] = {"fleet": float(FLEET), "trials": float(trials * rounds)}
    for kind in ("local", "remote"):
        out[f"{kind}_trials_per_s"] = statistics.median(res[kind]["rate"])
        out[f"{kind}_mru"] = statistics.median(res[kind]["mru"])
        log.info("%s: trials/s per round %s", kind, res[kind]["rate"])
    out["remote_over_local"] = out["remote_trials_per_s"] / out["local_trials_per_s"]
    out["same_outcomes"] = float(outcomes["local"] == outcomes["remote"])
    out["load_1min"] = os.getloadavg()[0]
    return out
