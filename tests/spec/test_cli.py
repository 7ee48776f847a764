"""`python -m enpire` as a user runs it: real subprocesses, exit codes, nothing created on error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from enpire import PROJECT_ROOT
from enpire.spec.search_path import config_dirs, group_options
from tests.spec.conftest import problem_paths


def _enpire(args: list[str], cwd: Path, module: str = "enpire") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("args", "path"), [
    (["task=nope"], "task"),
    (["budget.trials=-1"], "budget.trials"),
    (["fleet=0", "safety.torque_limit_nm=nan"], "safety.torque_limit_nm"),
    (["-m", "budget=smoke,nope"], "budget"),
])
def test_invalid_exits_2_and_creates_nothing(args: list[str], path: str, tmp_path: Path) -> None:
    db = tmp_path / "store" / "mlflow.db"
    result = _enpire([*args, f"tracking.uri=sqlite:///{db}"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert path in problem_paths(result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert not db.exists() and not (tmp_path / "store").exists()
    assert not (tmp_path / "outputs").exists(), "no run directory, no default MLflow store"
    assert result.stdout == ""


def test_cfg_job_prints_the_composed_spec(tmp_path: Path) -> None:
    result = _enpire(["--cfg", "job", "task=drawer", "fleet=4"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load(result.stdout)
    assert doc["fleet"] == 4 and doc["task"]["name"] == "drawer"
    assert "fleet: 4" in result.stdout and "name: drawer" in result.stdout
    assert {"task", "robot", "safety", "done", "budget", "agent", "policy", "executor", "tracking"} <= set(doc)
    assert not (tmp_path / "outputs").exists()


def test_help_lists_every_group_and_option(tmp_path: Path) -> None:
    result = _enpire(["--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1] for line in result.stdout.splitlines()
             if ":" in line and not line.startswith(" ")}
    groups = {p.name for root in config_dirs() for p in root.iterdir() if p.is_dir() and p.name != "hydra"}
    for group in sorted(groups):  # the task folders' options (task, safety, done, policy) are listed too
        assert group in lines, f"group {group} missing from --help"
        listed = {o.strip() for o in lines[group].split(",")}
        assert listed == set(group_options(group)), group
    assert "Exit codes" in result.stdout


def test_validate_cli_rejects_a_broken_user_config(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "budget").mkdir(parents=True)
    (conf / "config.yaml").write_text("defaults:\n  - budget: bad\n")
    (conf / "budget" / "bad.yaml").write_text("iterations: 0\n")
    result = _enpire(["--config-dir", str(conf)], cwd=tmp_path, module="enpire.validate")
    assert result.returncode == 2, result.stdout + result.stderr
    paths = problem_paths(result.stderr)
    assert "budget.iterations" in paths and "budget.trials" in paths
    assert "Traceback" not in result.stderr


def test_a_robot_kind_without_a_station_exits_2_naming_the_kinds_that_exist(tmp_path: Path) -> None:
    """robot.kind=real used to run the simulator: there is no real station yet."""
    from enpire.spec.semantic import STATION_KINDS

    db = tmp_path / "mlflow.db"
    result = _enpire(["robot.kind=real", f"tracking.uri=sqlite:///{db}"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert problem_paths(result.stderr) == ["robot.kind"]
    assert '"real"' in result.stderr and all(kind in result.stderr for kind in STATION_KINDS)
    assert "Traceback" not in result.stderr
    assert not db.exists() and not (tmp_path / "outputs").exists()


def test_shell_completion_prints_the_script_and_exits_0(tmp_path: Path) -> None:
    """Hydra's -sc takes a completion command (install=bash), not an override."""
    for flag in ("--shell-completion", "-sc"):
        result = _enpire([flag, "install=bash"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "hydra_bash_completion" in result.stdout and "complete " in result.stdout
        assert not (tmp_path / "outputs").exists()
