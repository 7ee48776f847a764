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
    for metric, colour in (("time_to_done_s", "#1f77b4"), ("robot_s_to_done", "#ff7f0e")):
        ys = []
        for f in fleets:
            vals = [s.metrics[metric] for s in by_fleet[f] if metric in s.metrics]
            ys.append(sum(vals) / len(vals) if vals else float("nan"))
        axes[2].plot(fleets, ys, "o-", color=colour, label=metric)
    axes[2].set_xlabel("fleet size (stations)")
    axes[2].set_ylabel("seconds to /done (mean; gaps: not reached)")
    axes[2].set_xticks(fleets or [1])
    axes[2].legend(fontsize=8)
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def budget_curves(sessions: list[Session], path: Path) -> Path:
    """Best success, MRU and MTU against each session's robot-seconds budget."""
    pts = sorted(((s.budget("robot_seconds") or 0.0, s) for s in sessions), key=lambda p: (p[0], p[1].start_ms))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    xs = [b for b, _ in pts]
    ax.plot(xs, [s.metrics.get("best_success_rate", 0.0) for _, s in pts], "o-", label="best success rate")
    ax.plot(xs, [s.metrics.get("mru", 0.0) for _, s in pts], "s--", label="MRU")
    ax.set_xscale("log" if xs and min(xs) > 0 and max(xs) / min(xs) > 8 else "linear")
    ax.set_xlabel("robot-seconds budget")
    ax.set_ylim(-0.02, 1.05)
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(xs, [s.metrics.get("mtu", 0.0) for _, s in pts], "^:", color="#9467bd", label="MTU (tokens/min)")
    ax2.set_ylabel("MTU (tokens/min)")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
