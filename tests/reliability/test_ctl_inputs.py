"""Bad operator inputs: each is refused with a clear message and leaves the session's channel usable."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from enpire.ops.control import ControlChannel
from enpire.ops.ctl import main
from tests.reliability.support import add_figure


def test_bad_ctl_inputs_are_refused_with_exit_2_and_a_reason(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    channel = ControlChannel(tmp_path, "sess-1")
    cases = [
        (["pause", "nope", "--control-root", str(tmp_path)], "unknown session 'nope'"),
        (["approve", "sess-1", "--control-root", str(tmp_path)], "approve needs ITERATION"),
        (["approve", "sess-1", "x", "--control-root", str(tmp_path)], "invalid int value"),
        (["launch", "sess-1", "--control-root", str(tmp_path)], "invalid choice"),
        (["stop", "sess-1", "--control-dir", str(tmp_path / "elsewhere")], "unknown session"),
        ([], "the following arguments are required"),
    ]
    try:
        for argv, why in cases:
            assert main(argv) == 2, argv
            assert why in capsys.readouterr().err, argv
        assert channel.poll(time.monotonic()) == []  # none of them reached the session
    finally:
        channel.close("test over")
    add_figure("bad inputs tried", len(cases))


def test_torn_or_foreign_files_in_the_command_folder_are_ignored(tmp_path: Path) -> None:
    channel = ControlChannel(tmp_path, "sess-2", poll_s=0.0)
    commands = channel.dir / "commands"
    (commands / "0001-garbage.json").write_text("{not json")
    (commands / "0002-unknown.json").write_text('{"verb": "self_destruct"}')
    (commands / ".0003-half-written.json.tmp").write_text('{"verb": "st')
    assert main(["pause", "sess-2", "--control-root", str(tmp_path)]) == 0
    got = channel.poll(time.monotonic())
    assert [c["verb"] for c in got] == ["pause"]
    assert channel.poll(time.monotonic()) == []  # read once: moved to done/
    channel.close("operator_stop")
    assert main(["resume", "sess-2", "--control-root", str(tmp_path)]) == 1  # ended sessions refuse commands
    add_figure("bad inputs tried", 3)


def test_commands_to_a_killed_session_are_refused_with_the_resume_hint(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import subprocess

    channel = ControlChannel(tmp_path, "sess-3")
    try:
        dead = subprocess.Popen(["true"])
        dead.wait()
        doc = json.loads((channel.dir / "session.json").read_text())
        (channel.dir / "session.json").write_text(json.dumps({**doc, "pid": dead.pid}))
        assert main(["stop", "sess-3", "--control-root", str(tmp_path)]) == 1
        assert "python -m enpire resume=sess-3" in capsys.readouterr().err
    finally:
        channel.close("test over")
    add_figure("bad inputs tried")


def test_an_unknown_supervision_mode_is_refused_before_anything_runs() -> None:
    from enpire.spec import load_spec
    from enpire.spec.errors import SpecError

    with pytest.raises(SpecError) as bad:
        load_spec(["supervision.approve=everything"])
    assert "supervision.approve" in str(bad.value) and "'none', 'code'" in str(bad.value)
    add_figure("bad inputs tried")
