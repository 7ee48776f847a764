"""The data behind the report's views: curves are lower bounds, the idea tree is a tree, cancelled
iterations say so, sessions of different tasks are never averaged together."""

from __future__ import annotations

from pathlib import Path

import pytest

from enpire.report.data import Iteration, Session, capability, cumulative
from enpire.report.markdown import iteration_table
from enpire.report.plots import _by_task_fleet, comparison_curves, success_curves
from enpire.report.tree import best_path, idea_tree, layout
from enpire.track.confidence import wilson


def it(index: int, parent: int | None, key: str, decision: str, s: int, n: int, own: int = 1,
       robot: float = 10.0, agent: str = "search-0") -> Iteration:
    return Iteration(run_id=f"r{index}", index=index, agent=agent, branch=agent, parent=parent, decision=decision,
                     hypothesis=f"hypothesis {index}", borrowed_from=None, raised_best=False,
                     time_ms=1000 * (index + 1), candidate_id=key, start_ms=1000 * index, end_ms=1000 * (index + 1),
                     metrics={"candidate_trials": float(n), "candidate_success_rate": s / n if n else 0.0,
                              "success_rate": 1.0 if own else 0.0, "pass_at_1": 1.0 if own else 0.0,
                              "pass_at_k": 1.0 if own else 0.0, "trials": float(own or 1), "robot_seconds": robot})


def session(iterations: list[Iteration], task: str = "drawer", fleet: int = 1, **metrics: float) -> Session:
    return Session(run_id=f"{task}{fleet}" + "0" * 24, name="n", experiment=f"enpire/{task}", status="FINISHED",
                   start_ms=0, end_ms=None, tags={"enpire.task": task, "enpire.best_candidate": "good",
                                                  "enpire.overrides": f"task={task} tracking.uri=sqlite:////x/y.db"},
                   params={"fleet": str(fleet), "done.goal.window": "50"}, metrics=dict(metrics),
                   iterations=iterations)


ITS = [it(0, None, "base", "discard", 0, 1, own=0), it(1, 0, "lucky", "discard", 1, 1),
       it(2, 1, "lucky", "discard", 1, 4, own=0), it(3, 0, "good", "discard", 1, 1),
       it(4, 3, "good", "keep", 4, 4), it(5, 4, "good", "keep", 16, 16), it(6, 0, "other", "cancelled", 0, 0, own=0),
       it(7, 5, "good", "keep", 50, 50)]


def test_the_capability_curve_is_the_lower_bound_of_confirmed_candidates() -> None:
    points = capability(session(ITS), "robot_seconds")
    assert [p.lcb for p in points][:4] == [0.0, 0.0, pytest.approx(wilson(1, 4)[0]), pytest.approx(wilson(1, 4)[0])]
    # a 1/1 never lifts the curve (fewer than 3 trials), and "lucky" fell back to 1/4 before "good" took over
    assert points[1].lcb == 0.0 and points[1].rate == 0.0
    for p in points:
        assert p.lcb <= p.rate + 1e-12
        if p.trials:
            assert p.lcb == pytest.approx(wilson(round(p.rate * p.trials), p.trials)[0])
    assert points[-1].key == "good" and points[-1].trials == 50 and points[-1].lcb == pytest.approx(wilson(50, 50)[0])
    assert [x for x, _ in cumulative(session(ITS), "robot_seconds")] == [10.0 * (i + 1) for i in range(8)]


def test_the_idea_tree_is_laid_out_as_a_tree_with_the_path_to_the_best(tmp_path: Path) -> None:
    s = session(ITS)
    pos = layout(s.iterations)
    assert pos[2][1] == pos[1][1]  # a re-evaluation stays on its candidate's row
    assert pos[4][1] == pos[5][1] == pos[7][1] == pos[3][1]
    assert len({pos[1][1], pos[3][1], pos[6][1], pos[0][1]}) == 4  # siblings get rows of their own
    for i in s.iterations:
        if i.parent is not None:
            assert pos[i.parent][0] < pos[i.index][0] and pos[i.parent][1] <= pos[i.index][1]  # right of, below
    assert best_path(s) == {0, 3, 4, 5, 7}
    png = idea_tree(s, tmp_path / "tree.png")
    assert png.stat().st_size > 5000
    assert success_curves(session(ITS, robot_s_to_done=80.0, reached_done=1.0), tmp_path / "c.png").stat().st_size


def test_cancelled_iterations_are_shown_as_cancelled_and_labels_leave_the_store_out() -> None:
    s = session(ITS)
    row = next(line for line in iteration_table(s).splitlines() if line.startswith("| 6 |"))
    assert "cancelled" in row and "not judged" in row and "discard" not in row
    assert s.label == "task=drawer"


def test_fleet_comparison_never_averages_across_tasks(tmp_path: Path) -> None:
    sessions = [session(ITS, "drawer", 2, robot_s_to_done=455.0, reached_done=1.0),
                session(ITS, "reach", 2, robot_s_to_done=142.0, reached_done=1.0)]
    grouped = _by_task_fleet(sessions, "robot_s_to_done")
    assert grouped["drawer"][2] == [455.0] and grouped["reach"][2] == [142.0]  # not one "fleet 2 = 298"
    assert comparison_curves(sessions, tmp_path / "cmp.png").stat().st_size > 5000


def test_a_candidate_the_twin_screened_out_is_drawn_and_labelled_as_such(tmp_path: Path) -> None:
    from dataclasses import replace

    from enpire.report.tree import _label, style_key

    out = replace(it(8, 0, "slow", "rejected", 0, 0, own=0), twin="screened_out",
                  metrics={"trials": 0.0, "twin_trials": 2.0, "twin_success_rate": 0.5})
    assert style_key(out) == "screened_out" and _label(out, "good") == "8 twin 1/2"
    plain = replace(it(9, 0, "bad", "rejected", 0, 0, own=0), metrics={"trials": 0.0})
    assert style_key(plain) == "rejected" and _label(plain, "good") == "9 rejected"
    assert idea_tree(session([*ITS, out, plain]), tmp_path / "tree.png").stat().st_size > 5000
