"""`team=[...]`: mixed teams of agents, composed and validated like every other key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from enpire.loop import build_agents
from enpire.spec import SpecError, load_spec

ROOT = Path(__file__).resolve().parents[2]


def test_mixed_team_builds_one_agent_of_each_named_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-FAKE-team")
    spec = load_spec(["team=[claude,search,search]", "fleet=3"])
    assert spec.agents == 3 and [a.kind for a in spec.team] == ["claude", "search", "search"]
    assert spec.agent.kind == "search"  # the composed group is untouched
    assert spec.as_dict()["team"][0]["model"] == spec.team[0].get("model")  # full configs are in the record
    agents = build_agents(spec)
    assert [(type(a).__name__, a.name, a.branch) for a in agents] == [
        ("ClaudeAgent", "claude-0", "claude-0"), ("SearchAgent", "search-1", "search-1"),
        ("SearchAgent", "search-2", "search-2")]


def test_overrides_of_the_agent_group_reach_its_team_member() -> None:
    spec = load_spec(["agent=claude", "agent.model=claude-haiku-4-5", "team=[claude,search]"])
    assert spec.team[0].get("model") == "claude-haiku-4-5"


def test_default_team_is_one_agent_of_the_group_per_station() -> None:
    spec = load_spec(["fleet=3"])
    assert spec.agents == 3 and [a.kind for a in spec.team] == ["search"] * 3
    assert load_spec(["fleet=3", "agents=2"]).team == (spec.agent,) * 2


@pytest.mark.parametrize(("overrides", "path", "expected"), [
    (["team=[claude,bogus]"], "team[1]", "an option of config group 'agent'"),
    (["team=[claude,search]", "agents=3"], "agents", "null or 2"),
    (["team=[]"], "team", "at least 1"),
])
def test_bad_team_is_named_by_key_path(overrides: list[str], path: str, expected: str) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(overrides)
    assert any(p.path == path and expected in p.expected for p in error.value.problems), error.value.render()


def test_bad_team_exits_2_before_anything_runs(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "enpire", "team=[claude,bogus]",
                           f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "team[1]" in proc.stderr and "bogus" in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()
