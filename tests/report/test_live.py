"""The live display (enpire.ops.progress): log lines scroll above one panel through rich, the /done window and an
ETA are shown, and a pipe gets a plain line."""

from __future__ import annotations

import io
import logging
import re
import sys
from types import SimpleNamespace

from rich.console import Console

from enpire.ops.progress import Progress, Snapshot, eta, window_progress
from enpire.records import TrialRecord
from enpire.track.confidence import Confirmed

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _snap(**kw: object) -> Snapshot:
    base = dict(elapsed_s=10.0, stations=["busy", "idle"], iterations=7, trials=42, best_success_rate=0.96,
                used={"robot_seconds": 100.0, "trials": 42.0, "wall_clock_s": 10.0},
                limits={"robot_seconds": 3000.0, "trials": 420.0, "wall_clock_s": 600.0, "iterations": 100.0},
                agents=["search-0: thinking"], last="it 6 search-0 keep 1.00 (4 trials)",
                best=Confirmed("c3f2aa", 48, 50))
    base.update(kw)
    return Snapshot(**base)  # type: ignore[arg-type]


def _record(k: int, ok: bool) -> TrialRecord:
    return TrialRecord(trial_id=f"i0009-t{k:03d}", iteration=9, station=0, seed=k, outcome="success" if ok else
                       "failure", attempts=1, success_attempt=1 if ok else None, pass_at_1=ok, pass_at_k=ok,
                       robot_seconds=2.0, wall_s=0.1, steps=10, clamps=0)


def test_the_done_window_counts_pooled_and_unpooled_trials_of_the_leading_candidate() -> None:
    open_ev = SimpleNamespace(key="c3f2aa", records=[_record(k, k != 3) for k in range(6)], pooled=2)
    c = window_progress({"c3f2aa": [True] * 37, "other": [True] * 4}, [open_ev], window=50, goal=0.95)
    assert c is not None and (c.key, c.trials, c.window) == ("c3f2aa", 41, 50)
    assert c.text() == "41/50 of candidate c3f2aa, 0.98 (goal 0.95)"
    assert window_progress({}, [], 50, 0.95) is None


def test_eta_is_the_first_cap_reached_at_the_rate_spent_so_far() -> None:
    seconds, cap = eta(_snap())  # type: ignore[misc]
    assert cap == "trials" and abs(seconds - 90.0) < 1e-6  # 42 of 420 trials in 10 s: 378 left at 4.2 per s


def test_log_lines_go_through_rich_above_the_one_panel(capsys) -> None:  # noqa: ANN001
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=110, height=40)
    plain = logging.StreamHandler(sys.stdout)  # what Hydra installs: a handler holding the stdout of its start
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(plain)
    root.setLevel(logging.INFO)
    try:
        with Progress("enpire drawer fleet=2", live=True, console=console) as progress:
            assert plain not in root.handlers and any(type(h).__name__ == "RichHandler" for h in root.handlers)
            confirming = window_progress({"c3f2aa": [True] * 41}, [], 50, 0.95)
            progress.update(_snap(confirming=confirming))
            logging.getLogger("enpire.loop").info("iteration 7 (search-0): keep, success 1.00 over 4 trials")
            progress.update(_snap(iterations=8, confirming=confirming))
        assert plain in root.handlers and not any(type(h).__name__ == "RichHandler" for h in root.handlers)
    finally:
        root.removeHandler(plain)
        root.setLevel(old_level)
    text = ANSI.sub("", buf.getvalue())
    assert text.index("enpire.loop: iteration 7") < text.rindex("enpire drawer fleet=2")  # the panel stays last
    assert "enpire.loop: iteration 7 (search-0): keep" in text  # through the Live console, not under it
    assert "iteration 7" not in capsys.readouterr().out  # nothing written past the Live display
    assert "41/50 of candidate c3f2aa, 1.00" in text and "0.96 (48/50, 95% CI 0.87-0.99)" in text
    assert "budget spent in ~1m30s (trials)" in text


def test_a_pipe_gets_a_plain_line_with_the_same_figures(capsys) -> None:  # noqa: ANN001
    with Progress("t", live=False) as progress:
        progress.update(_snap(confirming=window_progress({"c3f2aa": [True] * 41}, [], 50, 0.95)), force=True)
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and "best 0.96 (48/50, 95% CI 0.87-0.99)" in line
    assert "/done window 41/50 of candidate c3f2aa" in line and "budget spent in ~1m30s (trials)" in line
