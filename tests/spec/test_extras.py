"""The core runs without its optional packages, and an option that needs one is refused naming its extra.

The packages are made unimportable for real (a sitecustomize on PYTHONPATH, inherited by station
processes), not patched out of a check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.spec.conftest import problem_paths

BLOCKER = Path(__file__).resolve().parent / "without_extras"


def _enpire(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BLOCKER), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "enpire", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow  # a whole session in a core-only interpreter (~9 s)
def test_a_session_runs_without_any_extra(tmp_path: Path) -> None:
    out = _enpire(["task=reach", "fleet=2", "budget=smoke", "video.enabled=false",
                   f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"supervision.control_root={tmp_path}/control"],
                  tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "trials: " in out.stdout and "torch" not in out.stderr


def test_options_that_need_an_extra_are_refused_naming_it(tmp_path: Path) -> None:
    out = _enpire(["executor=ray", "agent=tpe", "policy=bc", "team=[claude,search]", "fleet=2"], tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert set(problem_paths(out.stderr)) == {"executor.kind", "agent.kind", "policy.kind", "team[0]"}, out.stderr
    for extra in ("enpire[ray]", "enpire[tpe]", "enpire[learn]", "enpire[claude]"):
        assert extra in out.stderr
    assert not (tmp_path / "outputs").exists()  # nothing ran


def test_validate_accepts_those_options_where_the_extras_are_missing(tmp_path: Path) -> None:
    """A config is valid whatever this machine has installed: validate checks configs, not the machine."""
    env = {**os.environ, "PYTHONPATH": str(BLOCKER)}
    code = ("from enpire.spec.compose import compose_config; from enpire.spec.load import spec_from_config; "
            "ov=('executor=ray','agent=tpe'); spec_from_config(compose_config(list(ov)), ov, check_extras=False); "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]
