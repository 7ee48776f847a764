"""Attribution reaches MLflow (SQLite: the trial rows, the iteration's tag and document) and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from enpire.loop import SessionContext, run_session
from enpire.report.__main__ import main as report_main
from enpire.spec import load_spec

# the scripted baseline with one parameter pushed far off, so the first iteration is a known failure
FAILING = {"drawer": ("policy.params.grasp_height.default=0.04", "handle never grasped"),
           "reach": ("policy.params.speed.default=0.02", "tool never within 2 cm"),
           "push_t": ("policy.params.pos_tol.default=0.06", "block"),  # stops short: position or heading, by seed
           "peg_insert": ("policy.params.insert_depth.default=0.0", "peg never entered the hole"),
           "lift": ("policy.params.grasp_depth.default=0.03", "jaws never reached the cube")}


def _session(task: str, root: Path) -> tuple[str, str]:
    override, words = FAILING[task]
    uri = f"sqlite:///{root}/mlflow.db"
    spec = load_spec(["experiment=debug", f"task={task}", "budget.iterations=1", "agent.trials_per_candidate=2",
                      override, f"tracking.uri={uri}", f"tracking.artifact_root={root}/artifacts"])
    assert run_session(spec, SessionContext(run_dir=str(root / "run")), live=False) == 0
    return uri, words


def _check(task: str, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri, words = _session(task, root)
    client = MlflowClient(tracking_uri=uri)
    (it,) = client.search_runs([e.experiment_id for e in client.search_experiments()],
                               filter_string="tags.`enpire.kind` = 'iteration'")
    assert words in it.data.tags["enpire.failures"]  # the histogram, readable in the MLflow UI
    local = Path(client.download_artifacts(it.info.run_id, "iteration.json", str(root / "dl")))
    histogram = json.loads(local.read_text())["failure_histogram"]
    assert histogram and words in histogram[0]["label"] and sum(e["count"] for e in histogram) >= 1
    rows = Path(client.download_artifacts(it.info.run_id, "trials.jsonl", str(root / "dl"))).read_text().split("\n")
    first = json.loads(rows[0])
    assert first["attribution"][0]["failing"] is not None and first["attribution"][0]["conditions"]
    table = json.loads(Path(client.download_artifacts(it.info.run_id, "trials_table.json", str(root / "dl")))
                       .read_text())
    assert "failing" in table["columns"] and "phase" in table["columns"]
    out = root / "report"
    assert report_main(["--tracking-uri", uri, "--out", str(out), "--no-log", "--no-stills"]) == 0
    capsys.readouterr()
    text = (out / "report.md").read_text()
    assert "### Failure attribution" in text and words in text
    assert histogram[0]["label"].replace("|", "\\|") in text  # the same groups as logged


def test_drawer_attribution_reaches_mlflow_and_the_report(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _check("drawer", tmp_path, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["reach", "push_t", "peg_insert", "lift"])
def test_every_task_attribution_reaches_mlflow_and_the_report(task: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    _check(task, tmp_path, capsys)
