"""Inputs that could copy secrets into the record, or hang composition: exit 2, key path named, nothing kept.

`policy.source=/proc/self/environ` once put ANTHROPIC_API_KEY into the journal and into the
candidate artifacts in MLflow; `session.name=${oc.env:ANTHROPIC_API_KEY}` into the run name,
params and tags; a YAML alias bomb in a config dir hung composition. Each case below exits 2
naming its key path, creates no MLflow store and no run directory (the run_cli fixture checks),
and prints no secret value.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from enpire import CONFIG_DIR, PROJECT_ROOT
from enpire.spec import load_spec
from enpire.spec.policy_source import ALLOW_ENV, MAX_BYTES
from tests.fleet.support import ScriptedAgent, migrated_store, params_proposal, run, spec_of, store
from tests.spec.conftest import problem_paths

__all__ = ["migrated_store", "store"]

SECRET_NAME = "ENPIRE_TEST_API_KEY"
SECRET = "sk-enpire-test-0123456789abcdef"
PYTHON = (
    "class Policy:\n    def reset(self, obs, feedback=None):\n        pass\n\n    def act(self, obs):\n"
    "        return [0.4, 0.0, 0.3, 0.0, 0.0]\n"
)


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(SECRET_NAME, SECRET)
    return SECRET


def _refused(run_cli: Callable[[list[str]], tuple[int, str]], argv: list[str], path: str) -> str:
    code, err = run_cli(argv)
    assert code == 2, err
    assert path in problem_paths(err), err
    assert SECRET not in err
    assert "Traceback" not in err
    return err


# -- policy.source -----------------------------------------------------------------------------
def _make(kind: str, cwd: Path, outside: Path) -> str:
    """A policy.source of the given kind; cwd is the user's project directory."""
    if kind == "proc-environ":
        return "/proc/self/environ"
    if kind == "etc-shadow":
        return "/etc/shadow"
    if kind == "python-outside-cwd":
        (outside / "policy.py").write_text(PYTHON)
        return str(outside / "policy.py")
    if kind == "symlink-to-environ":
        (cwd / "policy.py").symlink_to("/proc/self/environ")
        return "policy.py"
    if kind == "symlink-out-of-cwd":
        (outside / "real.py").write_text(PYTHON)
        (cwd / "policy.py").symlink_to(outside / "real.py")
        return "policy.py"
    if kind == "directory":
        (cwd / "pkg.py").mkdir()
        return "pkg.py"
    if kind == "fifo":
        os.mkfifo(cwd / "pipe.py")
        return "pipe.py"
    if kind == "binary":
        (cwd / "blob.py").write_bytes(bytes(range(256)) * 4)
        return "blob.py"
    if kind == "50-mb":
        with (cwd / "huge.py").open("wb") as f:
            f.truncate(50 * 1024 * 1024)  # sparse: instant, and 50 MB to stat
        return "huge.py"
    if kind == "just-over-the-limit":
        (cwd / "big.py").write_text("x = 1\n" * (MAX_BYTES // 6 + 1))
        return "big.py"
    if kind == "latin-1":
        (cwd / "latin.py").write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
        return "latin.py"
    if kind == "not-python":
        (cwd / "notes.py").write_text("this is not python (\n")
        return "notes.py"
    if kind == "not-a-py-file":
        (cwd / ".env").write_text("ANTHROPIC_KEY = 1\n")
        return ".env"
    if kind == "holds-a-secret":
        (cwd / "leaky.py").write_text(PYTHON + f"KEY = {SECRET!r}\n")
        return "leaky.py"
    raise AssertionError(kind)


SOURCE_KINDS = [
    "proc-environ",
    "etc-shadow",
    "python-outside-cwd",
    "symlink-to-environ",
    "symlink-out-of-cwd",
    "directory",
    "fifo",
    "binary",
    "50-mb",
    "just-over-the-limit",
    "latin-1",
    "not-python",
    "not-a-py-file",
    "holds-a-secret",
]


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_a_policy_source_enpire_must_not_read_exits_2(
    kind: str, run_cli, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = _make(kind, tmp_path, tmp_path_factory.mktemp("elsewhere"))  # run_cli runs in tmp_path
    err = _refused(run_cli, ["policy=code", f"policy.source={source}"], "policy.source")
    assert "ANTHROPIC" not in err  # nothing of the file's content is echoed


def test_a_python_file_in_the_project_or_an_allowed_dir_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(PYTHON)
    assert load_spec(["policy=code", "policy.source=mine.py"]).policy.source == "mine.py"
    shipped = PROJECT_ROOT / "examples" / "policies" / "drawer_policy.py"
    assert load_spec(["policy=code", f"policy.source={shipped}"]).policy.source == str(shipped)  # enpire's examples
    elsewhere = tmp_path_factory.mktemp("shared_policies")
    (elsewhere / "theirs.py").write_text(PYTHON)
    monkeypatch.setenv(ALLOW_ENV, str(elsewhere))
    assert load_spec(["policy=code", f"policy.source={elsewhere / 'theirs.py'}"]).policy.source


def test_started_from_the_file_system_root_not_every_file_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from enpire.spec.policy_source import policy_source_problem

    monkeypatch.chdir("/")
    for path in ("/proc/self/environ", "/etc/hostname", "/usr/lib/python3/dist-packages/nothing.py"):
        assert policy_source_problem(path) is not None, path
    assert policy_source_problem(str(PROJECT_ROOT / "examples" / "policies" / "drawer_policy.py")) is None


def test_the_policy_file_is_checked_again_when_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid at launch, swapped for a link to the environment later: the read refuses it."""
    from enpire.policy.code import read_source
    from enpire.spec.policy_source import PolicySourceError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(PYTHON)
    spec = load_spec(["policy=code", "policy.source=mine.py"])
    assert read_source(spec.policy.source) == PYTHON
    (tmp_path / "mine.py").unlink()
    (tmp_path / "mine.py").symlink_to("/proc/self/environ")
    with pytest.raises(PolicySourceError, match=r"policy\.source"):
        read_source(spec.policy.source)


def test_proc_self_environ_of_the_real_cli_prints_no_secret(tmp_path: Path) -> None:
    """A real process: its /proc/self/environ holds the key; nothing of it comes out, nothing is created."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HYDRA_FULL_ERROR": "0", SECRET_NAME: SECRET}
    db = tmp_path / "mlflow.db"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "enpire",
            "policy=code",
            "policy.source=/proc/self/environ",
            f"tracking.uri=sqlite:///{db}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert problem_paths(result.stderr) == ["policy.source"]
    assert SECRET not in result.stdout + result.stderr
    assert not db.exists() and not (tmp_path / "outputs").exists()


# -- resolvers that read the environment -------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "path"),
    [
        (f"session.name=${{oc.env:{SECRET_NAME}}}", "session.name"),
        (f"session.notes=prefix-${{oc.env:{SECRET_NAME}}}", "session.notes"),
        (f"fleet=${{oc.env:{SECRET_NAME}}}", "fleet"),  # would print the key in the type error
        (f"+extra=${{oc.env:{SECRET_NAME}}}", "extra"),
        ("session.name=${env:HOME}", "session.name"),  # OmegaConf 2.0's resolver
        ("session.name=${my_resolver:x}", "session.name"),  # one enpire does not know
    ],
)
def test_an_environment_resolver_in_an_override_exits_2(override: str, path: str, run_cli) -> None:
    _refused(run_cli, [override], path)


def test_an_environment_resolver_in_a_hydra_override_exits_2(run_cli) -> None:
    """The run directory is recorded: hydra.run.dir=${oc.env:KEY} would name it after the key."""
    _refused(run_cli, [f"hydra.run.dir=outputs/${{oc.env:{SECRET_NAME}}}"], "hydra.run.dir")


def test_an_environment_resolver_when_printing_the_resolved_config_exits_2(run_cli) -> None:
    _refused(run_cli, ["--cfg", "job", "--resolve", f"session.name=${{oc.env:{SECRET_NAME}}}"], "session.name")


def _config_dir(tmp_path: Path) -> Path:
    conf = tmp_path / "userconf"
    shutil.copytree(CONFIG_DIR, conf)
    return conf


def test_an_environment_resolver_in_a_config_file_exits_2(run_cli, tmp_path: Path) -> None:
    conf = _config_dir(tmp_path)
    budget = conf / "budget" / "smoke.yaml"
    budget.write_text(budget.read_text() + f"\nextra_note: ${{oc.env:{SECRET_NAME}}}\n")
    _refused(run_cli, ["--config-dir", str(conf), "budget=smoke"], "budget.extra_note")


def test_an_environment_resolver_assembled_at_resolution_time_exits_2(run_cli, tmp_path: Path) -> None:
    """`oc.decode` of '${oc.' + 'env:KEY}': no value names oc.env, resolution would still call it."""
    conf = _config_dir(tmp_path)
    root = conf / "config.yaml"
    text = root.read_text().replace("  name: null", "  name: ${oc.decode:${part_a}${part_b}}", 1)
    root.write_text(text + f"\npart_a: '\\${{oc.'\npart_b: 'env:{SECRET_NAME}}}'\n")
    err = _refused(run_cli, ["--config-dir", str(conf)], "session.name")
    assert "oc.env" in err


def test_a_secret_typed_as_a_value_is_recorded_redacted(store: list[str], tmp_path: Path) -> None:
    """Defence in depth: the key pasted literally reaches neither the spec nor MLflow."""
    spec = spec_of(
        *store, f"session.name=run-{SECRET}", f"session.notes={SECRET}", "budget=smoke", "budget.iterations=1"
    )
    assert SECRET not in repr(spec.as_dict()) + repr(spec.overrides)
    assert spec.session_name == f"run-<redacted:${SECRET_NAME}>"
    code, summary, text = run(spec, tmp_path / "run", agents=[ScriptedAgent([params_proposal(spec, trials=1)])])
    assert code == 0 and SECRET not in text
    session = MlflowClient(tracking_uri=spec.tracking.uri).get_run(summary["session_id"])
    recorded = repr((session.info.run_name, session.data.params, session.data.tags))
    assert SECRET not in recorded and f"<redacted:${SECRET_NAME}>" in recorded
    stored = [p for folder in (tmp_path / "artifacts", tmp_path / "run") for p in folder.rglob("*") if p.is_file()]
    stored += list(tmp_path.glob("mlflow.db*"))  # the store itself: params, tags, run names
    assert stored and not [p for p in stored if SECRET.encode() in p.read_bytes()]


# -- config files that would hang or crash composition -------------------------------------------
def _bomb(levels: int = 9) -> str:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind", ["alias-bomb", "recursive-alias", "too-deep", "too-big", "fifo"])
def test_a_config_file_that_would_hang_composition_exits_2_at_once(kind: str, run_cli, tmp_path: Path) -> None:
    conf = _config_dir(tmp_path)
    bad = conf / "budget" / "bomb.yaml"
    if kind == "alias-bomb":
        bad.write_text(_bomb() + "iterations: 1\n")  # 10^9 nodes once OmegaConf copies the aliases
    elif kind == "recursive-alias":
        bad.write_text("loop: &loop [*loop]\n")
    elif kind == "too-deep":
        bad.write_text("deep: " + "[" * 20000 + "]" * 20000 + "\n")
    elif kind == "too-big":
        bad.write_text("# padding\n" * 200_000)
    else:
        os.mkfifo(bad)  # reading it would block forever
    err = _refused(run_cli, ["--config-dir", str(conf), "budget=bomb"], "budget")
    assert "budget/bomb.yaml" in err
