"""The idea tree as a tree: a node per iteration, an edge from each parent to its child.

Layout (like a git log graph): x is the iteration index (time order); each node gets a row of its own,
except that a re-evaluation of its parent's candidate stays on the parent's row, so one line is one
candidate's evidence growing. Rows are handed out depth-first, so a subtree sits below its parent.
Edges are elbows: down from the parent, then right to the child. The path that led to the best
candidate (its iterations and their ancestors) is drawn bold green; borrowings (a branch recentred on
another branch's recipe) are dashed arrows from that branch's kept iteration; cancelled iterations are
hollow and say so.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from enpire.report.data import Iteration, Session  # noqa: E402

STYLE = {  # decision -> (marker, colour, label)
    "keep": ("*", "#2a9d3a", "kept"),
    "discard": ("o", "#9a9a9a", "discarded"),
    "rejected": ("x", "#d62728", "rejected"),
    "screened_out": ("x", "#f4a3a3", "screened out by the twin (no robot time)"),
    "crash": ("X", "#111111", "crash"),
    "unsafe": ("^", "#ff7f0e", "unsafe"),
    "cancelled": ("o", "#bbbbbb", "cancelled (not judged)"),
}
PATH_COLOUR = "#2a9d3a"
AGENT_COLOURS = ("#1f4e9c", "#a0522d", "#6a3d9a", "#b8860b", "#008080", "#c71585")


def layout(iterations: list[Iteration]) -> dict[int, tuple[float, int]]:
    """iteration index -> (x, row)."""
    by_index = {it.index: it for it in iterations}
    children: dict[int, list[Iteration]] = {}
    roots = []
    for it in iterations:
        if it.parent is not None and it.parent in by_index and it.parent < it.index:
            children.setdefault(it.parent, []).append(it)
        else:
            roots.append(it)
    pos: dict[int, tuple[float, int]] = {}
    rows = 0
    stack: list[tuple[Iteration, int]] = []
    for root in sorted(roots, key=lambda i: i.index, reverse=True):
        stack.append((root, -1))
    while stack:  # depth first, without recursion (re-evaluation chains can be long)
        it, row = stack.pop()
        if row < 0:
            row, rows = rows, rows + 1
        pos[it.index] = (float(it.index), row)
        kids = sorted(children.get(it.index, ()), key=lambda c: c.index)
        same = next((c for c in kids if it.candidate_id and c.candidate_id == it.candidate_id), None)
        others = [c for c in kids if c is not same]
        for c in reversed(others):  # pushed in reverse: popped in index order, after the re-evaluation
            stack.append((c, -1))
        if same is not None:
            stack.append((same, row))
    return pos


def best_path(session: Session) -> set[int]:
    """Iterations of the best candidate and all their ancestors."""
    key = session.best_candidate
    by_index = {it.index: it for it in session.iterations}
    out: set[int] = set()
    for it in session.iterations:
        if key and it.candidate_id == key:
            cur: Iteration | None = it
            while cur is not None and cur.index not in out:
                out.add(cur.index)
                cur = by_index.get(cur.parent) if cur.parent is not None else None
    return out


def style_key(it: Iteration) -> str:
    return "screened_out" if it.twin == "screened_out" else it.decision


def _label(it: Iteration, key: str | None) -> str:
    text = str(it.index)
    pooled = it.pooled
    if it.decision == "keep" or (key and it.candidate_id == key and it.decision != "cancelled"):
        text += f" {it.decision} {pooled.successes}/{pooled.trials}"
    elif it.decision == "cancelled":
        text += " cancelled"
    elif it.twin == "screened_out":  # the digital twin's successes / trials (docs/twin.md)
        trials = int(it.metric("twin_trials"))
        text += f" twin {round(it.metric('twin_success_rate') * trials)}/{trials}"
    elif it.decision in ("rejected", "crash", "unsafe"):
        text += f" {it.decision}"
    if (it.borrowed_from or "").startswith("memory:"):  # from another session's notebook (agent.memory_from)
        text += " (memory)"
    return text


def idea_tree(session: Session, path: Path) -> Path:
    its = session.iterations
    pos = layout(its)
    rows = max((r for _, r in pos.values()), default=0) + 1
    span = max((x for x, _ in pos.values()), default=1.0)
    fig, ax = plt.subplots(figsize=(min(22.0, 6.0 + 0.16 * span), min(40.0, 1.6 + 0.24 * rows)))
    on_path = best_path(session)
    key = session.best_candidate
    for it in its:
        if it.parent is None or it.parent not in pos or it.index not in pos:
            continue
        (px, pr), (x, r) = pos[it.parent], pos[it.index]
        bold = it.index in on_path and it.parent in on_path
        colour, width = (PATH_COLOUR, 2.6) if bold else ("#b5b5b5", 0.9)
        ax.plot([px, px, x], [pr, r, r], color=colour, lw=width, zorder=2 if bold else 1, solid_joinstyle="miter")
    for it in its:
        if not it.borrowed_from or it.index not in pos:
            continue
        src = [o for o in its if o.branch == it.borrowed_from and o.index < it.index and o.decision == "keep"]
        if src and src[-1].index in pos:
            ax.annotate("", xy=pos[it.index], xytext=pos[src[-1].index],
                        arrowprops={"arrowstyle": "->", "ls": "--", "color": "#1f77b4", "lw": 1.1})
    agents = sorted({it.agent for it in its})
    agent_colour = {a: AGENT_COLOURS[i % len(AGENT_COLOURS)] for i, a in enumerate(agents)}
    for it in its:
        marker, colour, _ = STYLE.get(style_key(it), ("s", "#8c564b", it.decision))
        x, r = pos[it.index]
        big = it.raised_best or (key is not None and it.candidate_id == key and it.decision == "keep")
        hollow = it.decision == "cancelled"
        ax.scatter([x], [r], marker=marker, s=170 if big else 46, zorder=4,
                   c="white" if hollow else colour,
                   edgecolors=None if marker == "x" else colour if hollow else ("black" if big else "none"),
                   linewidths=1.6 if marker == "x" else 1.2 if hollow or big else 0)  # an x is only its lines
        ax.annotate(_label(it, key), (x, r), textcoords="offset points", xytext=(4, 5), fontsize=6.5,
                    color=agent_colour[it.agent] if it.decision != "cancelled" else "#999999",
                    fontweight="bold" if it.index in on_path and it.decision == "keep" else "normal")
    handles = [Line2D([], [], marker=m, ls="", color=c, markerfacecolor="white" if d == "cancelled" else c,
                      label=lab) for d, (m, c, lab) in STYLE.items() if any(style_key(i) == d for i in its)]
    handles += [Line2D([], [], color="#b5b5b5", lw=0.9, label="parent -> child"),
                Line2D([], [], color=PATH_COLOUR, lw=2.6, label="path to the best candidate")]
    if any(i.borrowed_from for i in its):
        handles.append(Line2D([], [], color="#1f77b4", ls="--", label="borrowed recipe"))
    if len(agents) > 1:
        handles += [Line2D([], [], ls="", marker="$1$", color=agent_colour[a], label=f"label colour: {a}")
                    for a in agents]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_ylim(rows - 0.4, -0.8)  # first row on top
    ax.set_yticks([])
    ax.set_xlim(-1, span + 2.5)
    ax.set_xlabel("iteration (proposal order); labels: index, decision, candidate's pooled successes/trials")
    best = f"; best candidate {key[:10]}: {session.best}" if key else ""
    ax.set_title(f"idea tree of {session.label} ({session.run_id[:8]}){best}", fontsize=10)
    ax.grid(axis="x", alpha=0.25)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
