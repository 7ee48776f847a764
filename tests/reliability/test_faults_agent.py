"""Repeated agent failures: an agent that always raises ends the session cleanly, with the reason."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from enpire.agent.api import AgentReply, ResearchState
from enpire.records import IterationSummary
from tests.fleet.support import migrated_store, run, spec_of, store
from tests.reliability.support import add_figure

__all__ = ["migrated_store", "store"]


class BrokenAgent:
    """Every call fails: first by raising, then by returning garbage, then no proposal with an error."""

    def __init__(self) -> None:
        self.name = self.branch = "broken-0"
        self.calls = 0

    def propose(self, state: ResearchState) -> AgentReply:
        self.calls += 1
        if self.calls % 3 == 1:
            raise ConnectionError("model endpoint unreachable")
        if self.calls % 3 == 2:
            return "not a reply"  # type: ignore[return-value]
        return AgentReply(proposal=None, error="deadline exceeded")

    def observe(self, result: IterationSummary) -> None:
        raise AssertionError("a failed call is not an iteration")


def test_an_agent_that_always_fails_ends_the_session_cleanly_with_the_reason(
        store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store, "budget=smoke",  # the search agent config: 3 failures in a row end a session
                   f"supervision.control_root={tmp_path}/control")
    agent = BrokenAgent()
    code, summary, text = run(spec, tmp_path / "run", agents=[agent])
    assert code == 0, text  # a clean end: the summary is printed and the run is closed
    assert agent.calls == 3
    assert summary["stopped_by"].startswith("error: agent broken-0 failed 3 calls in a row"), summary["stopped_by"]
    assert "deadline exceeded" in summary["stopped_by"]
    assert summary["iterations"] == "0" and summary["trials"] == "0"
    session = MlflowClient(tracking_uri=spec.tracking.uri).get_run(summary["session_id"])
    assert session.info.status == "FINISHED"
    assert session.data.tags["enpire.stopped_by"] == summary["stopped_by"]
    add_figure("faults injected", 3)
    add_figure("faults survived", 3)
