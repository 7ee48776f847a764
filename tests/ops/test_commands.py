"""Operator control hands the loop commands (values); it never changes the loop's state itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from enpire.ops.commands import LoopStatus, SessionControl
from enpire.ops.control import ControlChannel, send
from enpire.records import Evaluation


class _Client:
    def set_tag(self, *args: object) -> None:
        pass


@pytest.fixture
def control(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SessionControl]:
    monkeypatch.delenv("ENPIRE_ESTOP_FLAG", raising=False)
    spec = SimpleNamespace(resolved={"supervision": {"approve": "code", "poll_s": 0.0}})
    channel = ControlChannel(tmp_path, ".starting/x", poll_s=0.0)
    out = SessionControl(spec, channel, SimpleNamespace(run_id="r1", client=_Client()))  # type: ignore[arg-type]
    yield out
    out.close("test over")


def _status(stopped_by: str | None = None) -> LoopStatus:
    return LoopStatus(paused=False, stopped_by=stopped_by, in_flight=0, trials=0, iterations=0)


def _code_ev(index: int) -> Evaluation:
    return Evaluation(index=index, agent="a", branch="b", parent=None, hypothesis="h",
                      candidate={"kind": "code", "source": "x"}, key="k", trials_wanted=1)


def test_commands_come_back_as_values_in_the_order_they_were_sent(control: SessionControl) -> None:
    for verb in ("pause", "resume", "stop"):
        send(control.channel.dir, verb)
    assert [c.verb for c in control.step(1.0, _status())] == ["pause", "resume", "stop"]


def test_an_approval_queues_the_held_iteration_and_an_unknown_one_is_refused(control: SessionControl) -> None:
    member = SimpleNamespace(name="a")
    ev = _code_ev(4)
    assert control.hold(ev, member, {"hypothesis": "h"})  # type: ignore[arg-type]
    send(control.channel.dir, "approve", iteration=9)
    send(control.channel.dir, "approve", iteration=4)
    (cmd,) = control.step(1.0, _status())
    assert (cmd.verb, cmd.ev, cmd.member) == ("queue", ev, member)
    assert "9" in (control.channel.dir / "state.json").read_text()  # the refusal is published for ctl status


def test_held_iterations_are_rejected_when_the_session_ends(control: SessionControl) -> None:
    control.hold(_code_ev(2), SimpleNamespace(name="a"), {})  # type: ignore[arg-type]
    (cmd,) = control.step(1.0, _status(stopped_by="done"))
    assert (cmd.verb, cmd.reason) == ("reject", "not approved before the session ended")
    assert not control.held
