"""The project as a user installs it: a wheel, non-editable, in a fresh venv, run from a folder that is not
the checkout (so configs and schemas must come from inside the package)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def sh(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: int = 1800) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_wheel_installs_into_a_fresh_venv_and_runs_a_session_to_done(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, ROOT, cwd=tmp_path)
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
    assert "470 passed, 0 failed" in sh(venv / "bin" / "enpire-validate", cwd=work, env=env)
    out = sh(venv / "bin" / "enpire", "task=reach", "fleet=2", "video.enabled=false", cwd=work, env=env)
    summary = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    assert summary["reached_done"] == "true", out[-2000:]
    assert (work / "outputs" / "mlflow.db").is_file()
    bad = subprocess.run([venv / "bin" / "enpire", "fleet=0"], cwd=work, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "fleet" in bad.stderr
