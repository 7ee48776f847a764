"""`latency`: robots busy while agents think: MRU at fleet 4 when every agent call takes seconds.

The offline search agent wrapped so that each `propose` sleeps `latency_s` first (an LLM-like call),
four of them (one per station), on the drawer at fleet 4 with local stations, under both determinism
settings. Reports MRU (loop) and the iterations and wall seconds it took. Goal: MRU >= 0.9 with a 5 s
agent. Quick mode: 2 s latency and a 25-iteration cap.
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


class SlowAgent:
    """Any agent, each call delayed by `latency_s` (stands in for a model's answer time)."""

    def __init__(self, agent: object, latency_s: float) -> None:
        self.inner, self.latency_s = agent, latency_s
        self.name = agent.name  # type: ignore[attr-defined]
        self.branch = agent.branch  # type: ignore[attr-defined]
        self.max_outstanding = getattr(agent, "max_outstanding", 1)
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


@bench("latency", "MRU at fleet 4 when each agent call takes 5 s (goal >= 0.9), strict and fast")
def latency(quick: bool) -> dict[str, float]:
    latency_s = 2.0 if quick else 5.0
    extra = ("budget.iterations=25",) if quick else ()
    out: dict[str, float] = {"latency_s": latency_s}
    with tempfile.TemporaryDirectory(prefix="enpire-bench-latency-") as tmp:
        for mode in ("strict", "fast"):
            s = session_with_latency(latency_s, mode, Path(tmp), extra)
            out[f"mru_{mode}"] = number(s, "mru")
            out[f"mru_session_{mode}"] = number(s, "mru_session")
            out[f"iterations_{mode}"] = number(s, "iterations")
            out[f"wall_s_{mode}"] = number(s, "wall_s")
            out[f"reached_done_{mode}"] = float(s.get("reached_done") == "true")
    return out
