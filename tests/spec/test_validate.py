"""`python -m enpire.validate`: the shipped configs pass; a user's broken config directory fails
with every broken file named by its key path (exit code 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from enpire.spec.search_path import copy_configs
from enpire.validate import main
from tests.spec.conftest import PROBLEM_LINE

# A small but complete copy of conf/ (one task, one robot): validating all 300-odd shipped
# combinations takes ~20 s on two cores (`make test` runs it, and the slow test below); these
# tests need only a few.
KEEP = {"task": {"drawer"}, "robot": {"enarm"}, "budget": {"smoke"}, "agent": {"search"}, "executor": {"inline"}}


def _small_conf(tmp_path: Path) -> Path:
    conf = copy_configs(tmp_path / "conf")  # the primary dir and the task folders' options in one tree
    for group, keep in KEEP.items():
        for path in (conf / group).glob("*.yaml"):
            if path.stem not in keep:
                path.unlink()
    for path in (conf / "experiment").glob("*.yaml"):
        path.unlink()
    for path in (conf / "policy").glob("*_scripted.yaml"):
        if path.stem.removesuffix("_scripted") not in KEEP["task"]:
            path.unlink()
    for group in ("safety", "done"):
        for path in (conf / group).glob("*.yaml"):
            if path.stem not in KEEP["task"]:
                path.unlink()
    root = yaml.safe_load((conf / "config.yaml").read_text())
    for i, entry in enumerate(root["defaults"]):
        if isinstance(entry, dict):
            (group, option), = entry.items()
            if group in KEEP and option not in KEEP[group]:
                root["defaults"][i] = {group: sorted(KEEP[group])[0]}
    (conf / "config.yaml").write_text(yaml.safe_dump(root, sort_keys=False))
    return conf


def _failures(err: str) -> dict[str, list[str]]:
    """label of each FAIL line -> key paths of its problems."""
    out: dict[str, list[str]] = {}
    label = ""
    for line in err.splitlines():
        if line.startswith("FAIL "):
            label = line[5:].split(": invalid", 1)[0]
            out[label] = []
        elif (m := PROBLEM_LINE.match(line)) and label:
            out[label].append(m.group("path"))
    return out


def test_small_valid_config_dir_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = _small_conf(tmp_path)
    assert main(["--only-config-dir", "--config-dir", str(conf)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "0 failed" in out
    options = sum(1 for _ in conf.glob("*/*.yaml"))
    assert f"validated {options} group options" in out


BROKEN = {
    # file under conf/ -> (text, key paths the report must name)
    "budget/negative.yaml": ("iterations: 3\ntrials: -4\nrobot_seconds: 0\nwall_clock_s: 60.0\ntokens: 10\n"
                             "trainer_seconds: 20.0\n", ["budget.robot_seconds", "budget.trials"]),
    "budget/unknown_key.yaml": ("iterations: 3\ntrials: 4\nrobot_seconds: 6.0\nwall_clock_s: 60.0\ntokens: 10\n"
                                "trainer_seconds: 20.0\ngpu_hours: 3\n", ["budget.gpu_hours"]),
    "budget/missing_key.yaml": ("iterations: 3\ntrials: 4\nrobot_seconds: 6.0\nwall_clock_s: 60.0\n"
                                "trainer_seconds: 20.0\n", ["budget.tokens"]),
    "budget/not_yaml.yaml": ("iterations: 3\ntrials: [4\n", ["budget"]),
    "budget/interpolation.yaml": ("iterations: 3\ntrials: ${budget.nope}\nrobot_seconds: 6.0\nwall_clock_s: 60.0\n"
                                  "tokens: 10\ntrainer_seconds: 20.0\n", ["budget.trials"]),
    "executor/wrong_type.yaml": ("kind: inline\nstart_method: none\ntrial_timeout_s: soon\nmax_restarts: 0\n",
                                 ["executor.trial_timeout_s"]),
    "agent/not_finite.yaml": ("kind: random\ntrials_per_candidate: 4\nreevaluate_trials: .nan\n",
                              ["agent.reevaluate_trials"]),
    "robot/broken_yaml.yaml": ("name: [oops\n", ["robot"]),
}


@pytest.mark.slow  # 6-12 s: with the slow tests in CI, keeping `make test` under ten minutes
def test_broken_config_dir_names_every_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = _small_conf(tmp_path)
    for rel, (text, _) in BROKEN.items():
        (conf / rel).write_text(text)
    code = main(["--only-config-dir", "--config-dir", str(conf), "--jobs", "2"])
    captured = capsys.readouterr()
    assert code == 2, captured.out
    failures = _failures(captured.err)
    for rel, (_, paths) in BROKEN.items():
        label = rel.removesuffix(".yaml")
        assert label in failures, f"{label} not reported: {sorted(failures)}"
        assert sorted(failures[label]) == paths, f"{label}: {failures[label]}"
    # the valid options still pass, and every combination using a broken budget fails on its own
    assert not any(label.startswith(("task/", "budget/smoke", "agent/search")) for label in failures)
    assert any("budget=unknown_key" in label for label in failures)
    assert "Traceback" not in captured.err


def test_missing_config_dir_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config-dir", str(tmp_path)]) == 2
    assert "config.yaml" in capsys.readouterr().err


@pytest.mark.slow
def test_every_shipped_combination_validates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "0 failed" in out
