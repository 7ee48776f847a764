"""A policy=code session with the Claude agent (stand-in API on loopback): each iteration keeps its transcript."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.agent.fake_anthropic import FakeMessagesAPI
from tests.fleet.support import migrated_store, run, spec_of, store

__all__ = ["migrated_store", "store"]


def test_code_session_stores_what_the_agent_was_told_and_answered(store: list[str], tmp_path: Path) -> None:
    with FakeMessagesAPI(autopilot=True, seed=1) as api:
        spec = spec_of(*store, "agent=claude", "policy=code", "budget=smoke", "budget.iterations=2",
                       f"agent.base_url={api.url}")
        code, summary, _ = run(spec, tmp_path)
        billed = api.tokens_returned
    assert code == 0 and int(summary["trials"]) > 0
    client = MlflowClient(tracking_uri=spec.tracking.uri)
    session = client.get_run(summary["session_id"])
    runs = client.search_runs([session.info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{summary['session_id']}'")
    iterations = [r for r in runs if r.data.tags["enpire.decision"] != "cancelled"]
    assert iterations
    total = 0
    for it in iterations:
        path = Path(client.download_artifacts(it.info.run_id, "agent/transcript.json"))
        calls = json.loads(path.read_text())
        assert calls, "an empty transcript"
        request = json.dumps(calls[0]["request"])
        assert "make_policy" in request and "[x, y, z, yaw, grip]" in request  # the contract was in the prompt
        assert any(c.get("tool_input") for c in calls)  # what the model proposed
        total += sum(c["usage"]["tokens_in"] + c["usage"]["tokens_out"] for c in calls if "usage" in c)
    assert total <= int(summary["tokens"])
    assert int(summary["tokens"]) == billed
