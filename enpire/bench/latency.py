"""`latency`: robots busy while agents think: MRU at fleet 4 when every agent call takes seconds.

The offline search agent wrapped so that each `propose` sleeps `latency_s` first (an LLM-like call),
four of them (one per station), on the drawer at fleet 4 with local stations, under both determinism
settings, at 2 s, 5 s and 10 s a call. Each call screens `agent.batch` candidates (BATCH: each its own
iteration, enpire.agent.calls); `budget.iterations` is raised to ITERATIONS so that a batch's extra
iterations do not end the session before /done. Reports MRU (loop and whole session), iterations, trials,
wall seconds, robot-seconds to /done and whether /done was reached. Goals: MRU >= 0.9 with a 5 s agent
(issue 18) and with a 10 s agent (issue 22).
`fast_confirm` is fast with `idle_stations=confirm` (idle stations confirm the leading candidate while the
agents think, enpire.agent.idle_fill).
Quick mode: one batch size; full mode adds batch 1 (one proposal a call) for comparison.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

from enpire.agent.api import AgentReply, ResearchState
from enpire.bench import bench
from enpire.bench.sessions import number
from enpire.records import IterationSummary
from enpire.track.summary import parse

BATCH = 8
ITERATIONS = 200
LATENCIES_S = (2.0, 5.0, 10.0)  # issue 22's goal: MRU >= 0.9 at fleet 4 with a 10 s agent


class SlowAgent:
    """Any agent, each call delayed by `latency_s` (stands in for a model's answer time)."""

    def __init__(self, agent: object, latency_s: float) -> None:
        self.inner, self.latency_s = agent, latency_s
        self.name = agent.name  # type: ignore[attr-defined]
        self.branch = agent.branch  # type: ignore[attr-defined]
        self.max_outstanding = getattr(agent, "max_outstanding", 1)
        self.batch = getattr(agent, "batch", 1)
        self.config = getattr(agent, "config", None)

    def propose(self, state: ResearchState) -> AgentReply:
        time.sleep(self.latency_s)
        return self.inner.propose(state)  # type: ignore[attr-defined]

    def observe(self, result: IterationSummary) -> None:
        self.inner.observe(result)  # type: ignore[attr-defined]


def session_with_latency(latency_s: float, determinism: str, store: Path, extra: tuple[str, ...]) -> dict[str, str]:
    from enpire.agent.registry import make_agent
    from enpire.loop import SessionContext, run_session
    from enpire.spec import load_spec

    spec = load_spec(["task=drawer", "fleet=4", "video.enabled=false", f"determinism={determinism}",
                      f"tracking.uri=sqlite:///{store}/mlflow.db", f"tracking.artifact_root={store}/artifacts",
                      *extra])
    agents = [SlowAgent(make_agent(spec, index=i, seed=spec.seed, agent=spec.team[i]), latency_s)
              for i in range(spec.agents)]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        run_session(spec, SessionContext(run_dir=tempfile.mkdtemp(dir=store)), agents=agents, live=False)
    return parse(buf.getvalue())


@bench("latency", "MRU at fleet 4 when each agent call takes 2 s / 5 s / 10 s (goal >= 0.9): strict, fast, "
                  "fast with idle_stations=confirm")
def latency(quick: bool) -> dict[str, float]:
    out: dict[str, float] = {"batch": float(BATCH)}
    batches = (BATCH,) if quick else (BATCH, 1)
    with tempfile.TemporaryDirectory(prefix="enpire-bench-latency-") as tmp:
        store = Path(tmp)
        from enpire.track.store_init import ensure_store

        ensure_store(f"sqlite:///{store}/mlflow.db")  # migrated once, outside every session's wall
        for batch in batches:
            extra = (f"agent.batch={batch}", f"budget.iterations={ITERATIONS}")
            for latency_s in LATENCIES_S:
                for mode in ("strict", "fast", "fast_confirm"):  # fast_confirm: idle_stations=confirm
                    more = ("idle_stations=confirm",) if mode == "fast_confirm" else ()
                    s = session_with_latency(latency_s, mode.removesuffix("_confirm"), store, extra + more)
                    tag = f"{mode}_{latency_s:g}s" + ("" if batch == BATCH else f"_batch{batch}")
                    out[f"mru_{tag}"] = number(s, "mru")
                    out[f"mru_session_{tag}"] = number(s, "mru_session")
                    for key in ("iterations", "trials", "wall_s", "robot_s_to_done"):
                        out[f"{key}_{tag}"] = number(s, key)
                    out[f"reached_done_{tag}"] = float(s.get("reached_done") == "true")
    return out
