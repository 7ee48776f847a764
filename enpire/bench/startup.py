"""`startup`: seconds from launching a session to its first trial, at fleet 4 (drawer, videos off).

Each repeat is a fresh interpreter (so imports count, as for a user), in which a short session runs
with the scheduler's first successful dispatch timestamped. Reports medians: interpreter start to
`import enpire.loop`, to the spec being composed, to MLflow being open, and to the first trial
dispatched (the figure that matters: the target is about 2 s on a quiet machine), for `tracking.open=first`
(the default: MLflow opens before the first trial) and `background` (trials start while it opens).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from enpire.bench import bench

PROBE = r"""
import json, sys, time
t0 = time.monotonic()
import enpire.loop as L
import enpire.fleet.scheduler as S
from enpire.spec import load_spec
marks = {"import": time.monotonic() - t0}
spec = load_spec(["task=drawer", "fleet=4", "video.enabled=false", "budget=smoke",
                  f"tracking.uri=sqlite:///{sys.argv[1]}/mlflow.db", f"tracking.artifact_root={sys.argv[1]}/art",
                  f"tracking.open={sys.argv[2]}"])
marks["composed"] = time.monotonic() - t0
import enpire.track.deferred as D
opened = D.DeferredTracking._open
def open_run(self, *args):  # the session run exists (on the thread that opens it, while trials run)
    opened(self, *args); marks.setdefault("mlflow_open", time.monotonic() - t0)
D.DeferredTracking._open = open_run
dispatch = S.Scheduler.dispatch
def first(self):
    n = dispatch(self)
    if n: marks.setdefault("first_trial", time.monotonic() - t0)
    return n
S.Scheduler.dispatch = first
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()):
    L.run_session(spec, L.SessionContext(run_dir=sys.argv[1] + "/run"), live=False)
print(json.dumps(marks))
"""


def probe(store: Path, open_mode: str = "first") -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(store), open_mode], capture_output=True, text=True,
                         timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@bench("startup", "seconds from launch to the first trial at fleet 4 (fresh interpreter; median of repeats)")
def startup(quick: bool) -> dict[str, float]:
    repeats = 3 if quick else 5
    runs = []
    with tempfile.TemporaryDirectory(prefix="enpire-bench-startup-") as tmp:
        store = Path(tmp)
        probe(store)  # a new store is migrated once (MLflow's schema); a user's later sessions find it ready
        runs = {mode: [] for mode in ("first", "background")}
        for _ in range(repeats):  # interleaved: both modes see the same drift of the machine's load
            for mode, found in runs.items():
                found.append(probe(store, mode))
    out: dict[str, float] = {"repeats": float(repeats)}
    for mode, found in runs.items():  # tracking.open: the default (first) and background
        keys = ("import", "composed", "first_trial") + (("mlflow_open",) if mode == "background" else ())
        out |= {f"{k}_s[{mode}]": statistics.median(r[k] for r in found if k in r) for k in keys}
    return out
