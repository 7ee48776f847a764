"""The report reads MLflow alone and writes tables and figures a researcher can read."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from enpire.loop import SessionContext, run_session
from enpire.report.__main__ import main as report_main
from enpire.spec import load_spec


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two short real sessions (inline stations, smoke budget) in one SQLite store."""
    root = tmp_path_factory.mktemp("report")
    uri = f"sqlite:///{root}/mlflow.db"
    for seed, fleet in ((0, 1), (1, 2)):
        spec = load_spec(["experiment=debug", f"fleet={fleet}", f"seed={seed}", "budget.iterations=4",
                          f"tracking.uri={uri}", f"tracking.artifact_root={root}/artifacts",
                          "video.enabled=true", "video.iterations=all", "video.render=inline", "video.width=96",
                          "video.height=72", "video.fps=5"])
        assert run_session(spec, SessionContext(run_dir=str(root / f"run{seed}")), live=False) == 0
    return uri


@pytest.mark.slow  # 6-9 s: with the slow tests (still in CI), keeping `make test` under ten minutes
def test_report_over_two_sessions(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    assert report_main(["--tracking-uri", store, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    client = MlflowClient(tracking_uri=store)
    sessions = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                  filter_string="tags.`enpire.kind` = 'session'")
    assert len(sessions) == 2
    text = (out / "report.md").read_text()
    for s in sessions:
        assert s.info.run_id[:8] in printed  # the comparison table names every session
        assert f"![idea tree](idea_tree_{s.info.run_id[:8]}.png)" in text
        iterations = client.search_runs(
            [s.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{s.info.run_id}'")
        for it in iterations:  # every iteration's hypothesis appears in its session's table
            assert it.data.tags["enpire.hypothesis"][:40].replace("|", "\\|") in text
        logged = [f.path for f in client.list_artifacts(s.info.run_id, "report")]
        assert "report/report.md" in logged
    for png in ("comparison.png", "budgets.png"):
        assert (out / png).stat().st_size > 5000
    assert any(p.name.startswith("still_") for p in out.iterdir()), "no stills from trial videos"


def test_report_rejects_unknown_session(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report_main(["--tracking-uri", store, "--session", "0" * 32, "--out", str(tmp_path)]) == 2
    assert "0" * 32 in capsys.readouterr().err


def test_report_without_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report_main(["--tracking-uri", f"sqlite:///{tmp_path}/none.db", "--out", str(tmp_path)]) == 2
    assert "no MLflow store" in capsys.readouterr().err


def test_report_shows_confirmed_success_and_readable_names(store: str, tmp_path: Path) -> None:
    from enpire.report.data import capability, load_sessions
    from enpire.track.confidence import wilson

    out = tmp_path / "rep"
    assert report_main(["--tracking-uri", store, "--out", str(out), "--no-log"]) == 0
    text = (out / "report.md").read_text()
    client = MlflowClient(tracking_uri=store)
    for s in load_sessions(client):
        assert s.name and "mlflow.db" not in s.name and "/" not in s.name  # named by what changed
        assert "tracking.uri" not in s.label
        assert f"best candidate {s.best}" in text or s.best == "–"
        for p in capability(s, "robot_seconds"):  # every plotted value is a 95% lower bound of >= 3 trials
            assert p.lcb <= p.rate and (p.trials >= 3 or p.lcb == 0.0)
            if p.trials:
                assert p.lcb == pytest.approx(wilson(round(p.rate * p.trials), p.trials)[0])
    assert "95% Wilson interval" in text
