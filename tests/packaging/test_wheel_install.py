"""The project as a user installs it: a wheel, non-editable, without extras, in a fresh venv, run from a folder
that is not the checkout (so configs and schemas must come from inside the package); then the example plugin
(examples/plugins/enpire-valve) as its own wheel, found through its entry point in every process."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "plugins" / "enpire-valve"

pytestmark = pytest.mark.slow


def sh(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: int = 1800) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _checkout_options() -> int:
    """Options of the checkout's own config groups (what the wheel must ship), as validate counts them."""
    from enpire.spec.schemas import GROUPS
    from enpire.spec.search_path import group_options

    return sum(len(group_options(g)) for g in (*GROUPS, "experiment"))


def _clean_copy(src: Path, dest: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", ".git", "build", "dist", "outputs", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".ruff_cache", "mlruns", "*.db")
    shutil.copytree(src, dest, ignore=ignore, symlinks=True)
    return dest


def test_wheel_and_plugin_install_into_a_fresh_venv_and_run_sessions_to_done(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    src = _clean_copy(ROOT, tmp_path / "src")  # a stale build/ of the checkout must not leak old files into the wheel
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, src, cwd=tmp_path)
    wheel = next(dist.glob("enpire-*.whl"))
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    py = venv / "bin" / "python"
    sh(py, "-m", "pip", "install", "--quiet", "-c", ROOT / "constraints.txt", wheel, cwd=tmp_path)
    where = sh(py, "-c", "import enpire; print(enpire.__file__, enpire.CONFIG_DIR.is_dir(), enpire.SPECS_DIR.is_dir())",
               cwd=tmp_path)
    assert str(venv) in where and where.split()[1:] == ["True", "True"], where  # not the checkout's copy
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(MUJOCO_GL="egl", PYOPENGL_PLATFORM="egl", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    validated = sh(venv / "bin" / "enpire-validate", cwd=work, env=env)
    core_options = int(re.search(r"validated (\d+) group options", validated).group(1))
    assert "0 failed" in validated and core_options == _checkout_options(), validated
    out = sh(venv / "bin" / "enpire", "task=reach", "fleet=2", "video.enabled=false", cwd=work, env=env)
    summary = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    assert summary["reached_done"] == "true", out[-2000:]
    assert (work / "outputs" / "mlflow.db").is_file()
    bad = subprocess.run([venv / "bin" / "enpire", "fleet=0"], cwd=work, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "fleet" in bad.stderr
    # The core install has no extras: torch, ray, anthropic and optuna are not there, and asking for them says so.
    assert "False" in sh(py, "-c", "import importlib.util as u; print(any(u.find_spec(m) for m in "
                                   "('torch', 'ray', 'anthropic', 'optuna')))", cwd=work, env=env)
    extra = subprocess.run([venv / "bin" / "enpire", "agent=tpe"], cwd=work, env=env, capture_output=True, text=True)
    assert extra.returncode == 2 and "pip install 'enpire[tpe]'" in extra.stderr, extra.stderr

    # The plugin: its own wheel, non-editable; nothing of the checkout on the path.
    plugin_src = _clean_copy(PLUGIN, tmp_path / "plugin_src")
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, plugin_src, cwd=tmp_path)
    sh(py, "-m", "pip", "install", "--quiet", "--no-deps", next(dist.glob("enpire_valve-*.whl")), cwd=tmp_path)
    where = sh(py, "-c", "import enpire_valve; print(enpire_valve.__file__)", cwd=work, env=env)
    assert str(venv) in where, where
    validated = sh(venv / "bin" / "enpire-validate", cwd=work, env=env)
    options = int(re.search(r"validated (\d+) group options", validated).group(1))
    assert "0 failed" in validated and options == core_options + 6, validated  # valve x4, enarm_rubber, grid
    assert "(plugins: enpire, enpire-valve)" in validated, validated
    plugin_out = sh(venv / "bin" / "enpire", "task=valve", "fleet=2", "video.enabled=false", cwd=work, env=env)
    plugin_summary = dict(line.split(": ", 1) for line in plugin_out.splitlines() if ": " in line)
    assert plugin_summary["reached_done"] == "true", plugin_out[-2000:]
    grid = sh(venv / "bin" / "enpire", "task=valve", "fleet=2", "agent=grid", "robot=enarm_rubber", "executor=local",
              "video.enabled=false", cwd=work, env=env)
    assert "reached_done: true" in grid, grid[-2000:]  # the plugin's agent and robot, in station processes
    bad_options = (("agent.points=1", "agent.points"), ("task.options.friction_nm=-1", "task.options.friction_nm"))
    for option, path in bad_options:
        refused = subprocess.run([venv / "bin" / "enpire", "task=valve", "agent=grid", option], cwd=work, env=env,
                                 capture_output=True, text=True)
        assert refused.returncode == 2 and f"  - {path}: got" in refused.stderr, refused.stderr
