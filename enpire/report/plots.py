"""Figures of the report: the idea tree, capability curves, comparisons across sessions."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from enpire.report.data import Session, cumulative  # noqa: E402

MARKERS = {  # decision -> (marker, colour, label)
    "keep": ("*", "#2a9d3a", "kept"),
    "discard": ("o", "#9a9a9a", "discarded"),
    "rejected": ("x", "#d62728", "rejected"),
    "crash": ("X", "#111111", "crash"),
    "unsafe": ("^", "#ff7f0e", "unsafe"),
}


def idea_tree(session: Session, path: Path) -> Path:
    """One lane per agent over wall-clock; kept ideas marked; parent edges solid, borrowed links dashed."""
    agents = sorted({it.agent for it in session.iterations}) or ["-"]
    lane = {a: i for i, a in enumerate(agents)}
    t0 = session.start_ms
    pos = {it.index: ((it.time_ms - t0) / 1000.0, lane[it.agent]) for it in session.iterations}
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.9 * len(agents)))
    for it in session.iterations:
        x, y = pos[it.index]
        if it.parent is not None and it.parent in pos:
            px, py = pos[it.parent]
            ax.plot([px, x], [py, y], color="#c8c8c8", lw=0.8, zorder=1)
        if it.borrowed_from:
            src = [o for o in session.iterations if o.branch == it.borrowed_from and o.index < it.index
                   and o.decision == "keep"]
            if src:
                sx, sy = pos[src[-1].index]
                ax.annotate("", xy=(x, y), xytext=(sx, sy),
                            arrowprops={"arrowstyle": "->", "ls": "--", "color": "#1f77b4", "lw": 1.0})
    seen = set()
    for it in session.iterations:
        marker, colour, label = MARKERS.get(it.decision, ("s", "#8c564b", it.decision))
        x, y = pos[it.index]
        size = 160 if it.raised_best else 50
        ax.scatter([x], [y], marker=marker, c=colour, s=size, zorder=3,
                   edgecolors="black" if it.raised_best else "none", label=None if label in seen else label)
        seen.add(label)
    ax.set_yticks(range(len(agents)), agents)
    ax.set_xlabel("wall-clock since session start (s)")
    ax.set_title(f"idea tree of session {session.run_id[:8]} (large markers raised the best success rate)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_ylim(-0.6, len(agents) - 0.4)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def success_curves(session: Session, path: Path) -> Path:
    """Best success rate so far against robot-seconds and against tokens spent."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric, xlabel in ((axes[0], "robot_seconds", "robot-seconds"), (axes[1], "tokens", "LLM tokens")):
        points = cumulative(session, metric)
        if points and points[-1][0] > 0:
            xs, ys = zip(*points)
            ax.step(xs, ys, where="post", color="#1f77b4")
        else:
            ax.text(0.5, 0.5, f"no {xlabel} spent", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("best success rate")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    fig.suptitle(f"capability of session {session.run_id[:8]}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def comparison_curves(sessions: list[Session], path: Path) -> Path:
    """Success against robot-seconds and wall-clock for every session, and spend to /done by fleet size."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for s in sessions:
        pts = cumulative(s, "robot_seconds")
        if pts:
            xs, ys = zip(*pts)
            axes[0].step(xs, ys, where="post", label=s.label[:40])
        wall = [((it.time_ms - s.start_ms) / 1000.0) for it in s.iterations]
        if wall:
            axes[1].step(wall, [b for _, b in pts], where="post", label=s.label[:40])
    for ax, xlabel in ((axes[0], "robot-seconds"), (axes[1], "wall-clock (s)")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("best success rate")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    by_fleet: dict[int, list[Session]] = {}
    for s in sessions:
        by_fleet.setdefault(s.fleet, []).append(s)
    fleets = sorted(by_fleet)

    def mean_of(metric: str) -> list[float]:
        out = []
        for f in fleets:
            vals = [s.metrics[metric] for s in by_fleet[f] if metric in s.metrics]
            out.append(sum(vals) / len(vals) if vals else float("nan"))
        return out

    # robot-seconds and wall seconds differ by ~100x: one axis each, so neither line is flattened
    axes[2].plot(fleets, mean_of("robot_s_to_done"), "o-", color="#ff7f0e", label="robot-s to /done")
    axes[2].set_ylabel("robot-seconds to /done (mean; gaps: not reached)")
    axes[2].set_ylim(bottom=0)
    wall_ax = axes[2].twinx()
    wall_ax.plot(fleets, mean_of("time_to_done_s"), "s--", color="#1f77b4", label="wall s to /done")
    wall_ax.set_ylabel("wall-clock seconds to /done")
    wall_ax.set_ylim(bottom=0)
    axes[2].set_xlabel("fleet size (stations)")
    axes[2].set_xticks(fleets or [1])
    handles = axes[2].get_legend_handles_labels()[0] + wall_ax.get_legend_handles_labels()[0]
    axes[2].legend(handles, [h.get_label() for h in handles], fontsize=8, loc="lower right")
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def budget_curves(sessions: list[Session], path: Path) -> Path:
    """Best success and MRU (left), robot-seconds spent to /done or in all (right) against each session's
    robot-seconds budget; each point is labelled with its budget and, for agents that use tokens, its MTU."""
    pts = sorted(((s.budget("robot_seconds") or 0.0, s) for s in sessions), key=lambda p: (p[0], p[1].start_ms))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs = [b for b, _ in pts]
    ax.plot(xs, [s.metrics.get("best_success_rate", 0.0) for _, s in pts], "o-", label="best success rate")
    ax.plot(xs, [s.metrics.get("mru", 0.0) for _, s in pts], "s--", label="MRU")
    if xs and min(xs) > 0 and max(xs) / min(xs) > 8:
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
    spent_ax = ax.twinx()
    spent = [s.metrics.get("robot_s_to_done", s.metrics.get("robot_seconds", float("nan"))) for _, s in pts]
    spent_ax.plot(xs, spent, "^:", color="#9467bd", label="robot-s to /done (or spent)")
    spent_ax.set_ylabel("robot-seconds")
    finite = [v for v in spent if v == v]
    spent_ax.set_ylim(0, 1.3 * max(finite) if finite and max(finite) > 0 else 1.0)  # clear of the rate lines
    for x, (_, s) in zip(xs, pts, strict=True):
        if s.metrics.get("mtu", 0.0) > 0:
            ax.annotate(f"MTU {s.metrics['mtu']:.0f}", (x, s.metrics.get("mru", 0.0)), fontsize=7,
                        textcoords="offset points", xytext=(4, -10))
    handles = ax.get_legend_handles_labels()[0] + spent_ax.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
