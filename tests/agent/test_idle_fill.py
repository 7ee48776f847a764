"""idle_stations=confirm: while a slow agent thinks, idle stations run confirmation trials of the leading
candidate, recorded as iterations of the pseudo-agent `confirm` (real MuJoCo trials, MLflow on SQLite)."""

from __future__ import annotations

import time
from pathlib import Path

from enpire.agent.api import AgentReply, ResearchState
from tests.fleet.support import ScriptedAgent, migrated_store, params_proposal, run, spec_of, store

__all__ = ["migrated_store", "store"]


class SlowAgent(ScriptedAgent):
    """Answers after `delay_s`, as an LLM would."""

    def __init__(self, proposals: list, delay_s: float) -> None:
        super().__init__(proposals)
        self.delay_s = delay_s

    def propose(self, state: ResearchState) -> AgentReply:
        time.sleep(self.delay_s)
        return super().propose(state)


def _session(store: list[str], tmp_path: Path, *overrides: str) -> tuple[list, dict]:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=3", *overrides)
    agent = SlowAgent([params_proposal(spec, trials=1), params_proposal(spec, trials=1, speed=0.3)], delay_s=0.4)
    seen: list = []
    code, summary, _ = run(spec, tmp_path / "run", agents=[agent], on_iteration=seen.append)
    assert code == 0, summary
    return seen, summary


def test_idle_stations_confirm_the_leading_candidate_while_the_agent_thinks(store: list[str], tmp_path: Path) -> None:
    seen, summary = _session(store, tmp_path, "determinism=fast", "idle_stations=confirm")
    confirm = [s for s in seen if s.agent == "confirm"]
    assert confirm, [s.agent for s in seen]
    agent_keys = {s.candidate_id for s in seen if s.agent != "confirm"}
    for s in confirm:  # the untuned baseline while the first call is out, then the leading candidate
        assert s.trials >= 1
        if "untuned baseline" in s.hypothesis:
            assert s.parent is None and s.candidate["kind"] == "params"
        else:
            assert "Confirmation trials" in s.hypothesis and s.parent is not None and s.candidate_id in agent_keys
    assert int(summary["trials"]) == sum(s.trials for s in seen)  # every confirmation trial is charged


def test_strict_sessions_never_fill(store: list[str], tmp_path: Path) -> None:
    seen, _ = _session(store, tmp_path, "idle_stations=confirm")  # determinism=strict, the default
    assert seen and all(s.agent != "confirm" for s in seen)
