"""Capability curves of the report: confirmed success against what it cost, per session and across sessions.

Every curve plots a lower bound: after each iteration, the highest 95% Wilson lower bound among the
candidates' current pooled results with at least confidence.MIN_TRIALS trials (data.capability). The
pooled rate of that candidate is drawn faintly beside it, /done is marked where it was met, and sessions
are grouped by task (a fleet or budget comparison never averages across different tasks).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from enpire.report.data import Point, Session, capability  # noqa: E402
from enpire.report.tree import idea_tree  # noqa: E402,F401  (the report's figures are all reached from here)
from enpire.track.confidence import MIN_TRIALS  # noqa: E402

LCB_LABEL = f"best confirmed success (95% lower bound, candidates with >= {MIN_TRIALS} trials)"
TASK_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def _task_colours(sessions: list[Session]) -> dict[str, str]:
    tasks = sorted({s.task for s in sessions})
    return {t: TASK_COLOURS[i % len(TASK_COLOURS)] for i, t in enumerate(tasks)}


def _curve(ax: Axes, points: list[Point], x_of: Callable[[Point], float], colour: str, label: str | None,
           rate: bool = True) -> None:
    xs = [x_of(p) for p in points]
    ax.step(xs, [p.lcb for p in points], where="post", color=colour, lw=1.8, label=label)
    if rate:
        ax.step(xs, [p.rate for p in points], where="post", color=colour, lw=0.8, ls=":", alpha=0.7,
                label=None if label is None else "its pooled rate")
    if points and points[-1].trials:
        last = points[-1]
        ax.annotate(f"{round(last.rate * last.trials)}/{last.trials}: lower bound {last.lcb:.2f}",
                    (xs[-1], last.lcb), textcoords="offset points", xytext=(-4, -12), ha="right", fontsize=7,
                    color=colour)


def _done_marker(ax: Axes, x: float | None, colour: str = "#2a9d3a", text: str = "/done") -> None:
    if x is None:
        return
    ax.axvline(x, color=colour, ls="--", lw=1.0)
    ax.annotate(text, (x, 1.0), textcoords="offset points", xytext=(3, -10), fontsize=8, color=colour)


def _rate_axis(ax: Axes, xlabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.05)
    ax.grid(alpha=0.3)


def success_curves(session: Session, path: Path) -> Path:
    """Confirmed success against robot-seconds and against LLM tokens (wall-clock when none were spent)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.9))
    m = session.metrics
    robot = capability(session, "robot_seconds")
    tokens = capability(session, "tokens")
    if robot and robot[-1].spent > 0:
        _curve(axes[0], robot, lambda p: p.spent, "#1f77b4", "lower bound")
        _done_marker(axes[0], m.get("robot_s_to_done"))
    else:
        axes[0].text(0.5, 0.5, "no robot-seconds spent", ha="center", va="center", transform=axes[0].transAxes)
    _rate_axis(axes[0], "robot-seconds")
    axes[0].legend(fontsize=7, loc="upper left")
    if tokens and tokens[-1].spent > 0:
        _curve(axes[1], tokens, lambda p: p.spent, "#9467bd", "lower bound")
        _done_marker(axes[1], m.get("tokens_to_done"))
        _rate_axis(axes[1], "LLM tokens")
    else:  # an offline agent: wall-clock is the other cost worth a curve
        _curve(axes[1], robot, lambda p: p.wall_s, "#ff7f0e", "lower bound")
        done = session.done_iteration
        _done_marker(axes[1], ((done.end_ms or done.time_ms) - session.start_ms) / 1000.0 if done else None)
        _rate_axis(axes[1], "wall-clock since the session run started (s); no LLM tokens were spent")
    fig.suptitle(f"capability of {session.label} ({session.run_id[:8]}): {LCB_LABEL}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _by_task_fleet(sessions: list[Session], metric: str) -> dict[str, dict[int, list[float]]]:
    out: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for s in sessions:
        if metric in s.metrics:
            out[s.task][s.fleet].append(s.metrics[metric])
    return out


def comparison_curves(sessions: list[Session], path: Path) -> Path:
    """Top: each session's confirmed success against robot-seconds and wall-clock, coloured by task, /done
    marked. Bottom: robot-seconds and wall seconds to /done against fleet size, one line per task (the mean of
    that task's sessions at that fleet size; each session a dot; sessions that did not reach /done are left out
    and counted in the legend)."""
    colours = _task_colours(sessions)
    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    styles = ("-", "--", "-.", ":")
    per_task: dict[str, int] = defaultdict(int)
    for s in sessions:
        pts = capability(s, "robot_seconds")
        if not pts:
            continue
        colour = colours[s.task]
        ls = styles[per_task[s.task] % len(styles)]
        per_task[s.task] += 1
        name = f"{s.task}: {s.label[:38]}"
        done_it = s.done_iteration
        done_wall = ((done_it.end_ms or done_it.time_ms) - s.start_ms) / 1000.0 if done_it else None
        for ax, x_of, done in ((axes[0][0], lambda p: p.spent, s.metrics.get("robot_s_to_done")),
                               (axes[0][1], lambda p: p.wall_s, done_wall)):
            xs = [x_of(p) for p in pts]
            ax.step(xs, [p.lcb for p in pts], where="post", color=colour, ls=ls, lw=1.5, label=name)
            if done is not None:
                ax.plot([done], [max((p.lcb for p in pts), default=0.0)], marker="D", ms=6, color=colour,
                        markeredgecolor="black", ls="")
    _rate_axis(axes[0][0], "robot-seconds (diamond: /done met)")
    _rate_axis(axes[0][1], "wall-clock since the session run started (s) (diamond: /done met)")
    axes[0][0].set_title(LCB_LABEL, fontsize=8)
    axes[0][0].legend(fontsize=7, loc="lower right")
    for ax, metric, ylabel in ((axes[1][0], "robot_s_to_done", "robot-seconds to /done"),
                               (axes[1][1], "time_to_done_s", "wall-clock seconds to /done")):
        grouped = _by_task_fleet(sessions, metric)
        fleets = sorted({s.fleet for s in sessions})
        for task in sorted(colours):
            by_fleet = grouped.get(task, {})
            xs = sorted(by_fleet)
            missing = sum(1 for s in sessions if s.task == task and metric not in s.metrics)
            label = f"{task} (mean)" + (f"; {missing} session(s) without /done" if missing else "")
            if xs:
                ax.plot(xs, [sum(by_fleet[f]) / len(by_fleet[f]) for f in xs], "o-", color=colours[task], label=label)
                for f in xs:
                    ax.scatter([f] * len(by_fleet[f]), by_fleet[f], s=14, color=colours[task], alpha=0.5, zorder=3)
            else:
                ax.plot([], [], "o-", color=colours[task], label=label)
        ax.set_xlabel("fleet size (stations)")
        ax.set_xticks(fleets or [1])
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def budget_curves(sessions: list[Session], path: Path) -> Path:
    """Per task: the best confirmed lower bound and MRU (left axis), and robot-seconds spent to /done or in all
    (right axis) against each session's robot-seconds budget."""
    colours = _task_colours(sessions)
    pts = sorted(((s.budget("robot_seconds") or 0.0, s) for s in sessions), key=lambda p: (p[0], p[1].start_ms))
    fig, ax = plt.subplots(figsize=(8, 4.6))
    spent_ax = ax.twinx()
    xs_all = [b for b, _ in pts]
    spent_all: list[float] = []
    for task, colour in colours.items():
        mine = [(b, s) for b, s in pts if s.task == task]
        xs = [b for b, _ in mine]
        ax.plot(xs, [s.metrics.get("best_success_lcb", float("nan")) for _, s in mine], "o-", color=colour,
                label=f"{task}: best success, 95% lower bound")
        ax.plot(xs, [s.metrics.get("mru", 0.0) for _, s in mine], "s--", color=colour, alpha=0.6,
                label=f"{task}: MRU")
        spent = [s.metrics.get("robot_s_to_done", s.metrics.get("robot_seconds", float("nan"))) for _, s in mine]
        spent_all += spent
        spent_ax.plot(xs, spent, "^:", color=colour, alpha=0.8, label=f"{task}: robot-s to /done (or spent)")
        for x, (_, s) in zip(xs, mine, strict=True):
            if s.metrics.get("mtu", 0.0) > 0:
                ax.annotate(f"MTU {s.metrics['mtu']:.0f}", (x, s.metrics.get("mru", 0.0)), fontsize=7,
                            textcoords="offset points", xytext=(4, -10))
    if xs_all and min(xs_all) > 0 and max(xs_all) / min(xs_all) > 8:
        ax.set_xscale("log")
    ticks: dict[float, str] = {}  # one tick per distinct budget: the budget option's name when a session has one
    for b, s in pts:
        names = [w for w in s.label.split() if w.startswith("budget=")]
        ticks.setdefault(b, f"{names[0]}\n{b:,.0f} s" if names else f"{b:,.0f} s")
    ax.set_xticks(list(ticks))
    ax.set_xticklabels(list(ticks.values()), fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel("robot-seconds budget")
    ax.set_ylabel("rate")
    ax.set_ylim(-0.02, 1.05)
    ax.grid(alpha=0.3)
    spent_ax.set_ylabel("robot-seconds")
    finite = [v for v in spent_all if v == v]
    spent_ax.set_ylim(0, 1.3 * max(finite) if finite and max(finite) > 0 else 1.0)  # clear of the rate lines
    handles = ax.get_legend_handles_labels()[0] + spent_ax.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
