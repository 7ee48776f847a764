"""Helpers of the spec tests: run the CLI in-process and read its problem lines."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from enpire import CONFIG_DIR
from enpire.__main__ import main
from enpire.spec import ExperimentSpec, load_spec

# One problem line of a rendered SpecError: "  - <path>: got <value>; expected <what>".
PROBLEM_LINE = re.compile(r"^\s+- (?:\[[^\]]*\] )?(?P<path>\S+): got (?P<value>.*?); expected (?P<expected>.+)$", re.M)


def problem_paths(stderr: str) -> list[str]:
    """Key paths named by the problem lines of a CLI's stderr, in order."""
    return [m.group("path") for m in PROBLEM_LINE.finditer(stderr)]


@pytest.fixture(scope="session")
def drawer() -> ExperimentSpec:
    """The shipped default spec: invalid values below are derived from it, not hard-coded."""
    return load_spec(["task=drawer"])


@pytest.fixture
def run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str]]:
    """Call `python -m enpire`'s main() in a scratch cwd with a scratch MLflow store.

    Returns (exit code, stderr) and asserts afterwards that nothing was created: no MLflow
    database, no Hydra run directory.
    """
    monkeypatch.chdir(tmp_path)
    # Should a case ever pass validation, fail fast instead of running a whole session.
    monkeypatch.setattr("enpire.__main__._app", lambda: pytest.fail("the spec passed: a session would start"))
    db = tmp_path / "mlflow.db"

    def run(argv: list[str]) -> tuple[int, str]:
        tracking = [] if any(a.lstrip("+~").startswith("tracking") for a in argv) else [
            f"tracking.uri=sqlite:///{db}", f"tracking.artifact_root={tmp_path / 'artifacts'}"]
        code = main([*argv, *tracking])
        err = capsys.readouterr().err
        assert not db.exists(), "an invalid spec created an MLflow store"
        assert not (tmp_path / "outputs").exists(), "an invalid spec created a run directory"
        return code, err

    return run


@pytest.fixture(scope="session")
def config_dir() -> Path:
    return CONFIG_DIR
