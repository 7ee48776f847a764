"""Plugins from outside the package (enpire.plugins): the example plugin found through ENPIRE_PLUGINS in
the runner and in station processes, its options checked against its own schemas, and clear errors for a
plugin that is broken or contradicts another. The installed-wheel path is tests/packaging (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from enpire import PROJECT_ROOT, plugins
from enpire.spec import load_spec
from enpire.spec.errors import SpecError
from enpire.spec.schemas import _registry, _validator
from enpire.spec.search_path import group_options
from tests.spec.conftest import problem_paths

PLUGIN_DIR = PROJECT_ROOT / "examples" / "plugins" / "enpire-valve"


def _use(monkeypatch: pytest.MonkeyPatch, target: str, path: Path | None = PLUGIN_DIR) -> None:
    monkeypatch.setenv(plugins.ENV_VAR, target)
    if path is not None:
        monkeypatch.syspath_prepend(str(path))
    plugins.reset_cache()
    _registry.cache_clear()
    _validator.cache_clear()


@pytest.fixture
def valve(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    _use(monkeypatch, "enpire_valve:PLUGIN")
    yield
    monkeypatch.delenv(plugins.ENV_VAR)
    plugins.reset_cache()
    _registry.cache_clear()
    _validator.cache_clear()


def test_the_plugin_adds_its_task_robot_and_agent_options(valve: None) -> None:
    assert "valve" in group_options("task") and "enarm_rubber" in group_options("robot")
    assert "grid" in group_options("agent") and "valve" in plugins.names("scripted")
    spec = load_spec(["task=valve", "agent=grid", "robot=enarm_rubber"])
    assert (spec.task.name, spec.agent.kind, spec.robot.name) == ("valve", "grid", "enarm_rubber")
    assert spec.task.options["friction_nm"] == 0.05
    assert plugins.owner("robots", "enarm_rubber") == "enpire-valve" and plugins.owner("tasks", "drawer") == "enpire"


@pytest.mark.parametrize(("override", "path"), [
    ("agent.points=1", "agent.points"),
    ("task.options.friction_nm=-1", "task.options.friction_nm"),
    ("+task.options.colour=red", "task.options.colour"),
])
def test_a_bad_plugin_option_names_its_key_path(valve: None, override: str, path: str) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(["task=valve", "agent=grid", override])
    assert [p.path for p in error.value.problems] == [path]


def test_a_plugin_only_key_is_refused_for_another_kind(valve: None) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(["agent=search", "+agent.points=3"])
    assert [p.path for p in error.value.problems] == ["agent.points"]


def test_peg_insert_refuses_a_robot_without_its_capability(valve: None) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(["task=peg_insert", "robot=enarm_rubber"])
    assert [p.path for p in error.value.problems] == ["robot.name"]
    assert "enarm_wrist" in error.value.problems[0].expected


def test_two_plugins_defining_one_task_is_an_error_naming_both(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "clash_plugin.py").write_text(
        "from enpire.plugins import Plugin\nPLUGIN = Plugin('clash', tasks={'drawer': 'clash_plugin'})\n")
    _use(monkeypatch, "clash_plugin:PLUGIN", tmp_path)
    with pytest.raises(plugins.PluginError, match=r"plugins 'enpire' and 'clash' both define task 'drawer'"):
        plugins.plugins()
    plugins.reset_cache()


def test_a_plugin_that_does_not_import_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, "no_such_plugin_module:PLUGIN", None)
    with pytest.raises(plugins.PluginError, match=r"no_such_plugin_module:PLUGIN.*cannot be loaded"):
        plugins.plugins()
    plugins.reset_cache()


@pytest.mark.slow  # a session on station worker processes (~7 s)
def test_a_plugin_session_reaches_done_with_station_processes(tmp_path: Path) -> None:
    """executor=local: every station worker loads the plugin itself (from the inherited environment)."""
    env = {**os.environ, plugins.ENV_VAR: "enpire_valve:PLUGIN",
           "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "enpire", "task=valve", "fleet=2", "executor=local", "agent=grid",
                          "video.enabled=false", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
                          f"supervision.control_root={tmp_path}/control"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    assert summary["reached_done"] == "true" and summary["crashes"] == "0", out.stdout[-2000:]
    bad = subprocess.run([sys.executable, "-m", "enpire", "task=valve", "task.options.damping=-2"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and problem_paths(bad.stderr) == ["task.options.damping"], bad.stderr


def test_a_clashing_plugin_ends_the_command_with_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "clash_cli.py").write_text(
        "from enpire.plugins import Plugin\nPLUGIN = Plugin('clash', agents={'search': 'clash_cli:X'})\n")
    env = {**os.environ, plugins.ENV_VAR: "clash_cli:PLUGIN",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "enpire", "task=reach"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "plugins 'enpire' and 'clash' both define agent 'search'" in out.stderr and "Traceback" not in out.stderr
