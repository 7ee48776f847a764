"""The live progress display: one rich panel on a terminal, plain log lines otherwise.

The loop calls `update(snapshot)` often; this module decides how often to redraw (4 Hz on a
terminal, a line every PLAIN_EVERY_S seconds when stdout is a file or a pipe).

On a terminal, log records go through a rich `RichHandler` on the Live display's own console while
the panel is up: the console-bound handlers (Hydra's `console`, any StreamHandler on stdout/stderr)
are swapped out and put back on exit, so log lines scroll above the one panel instead of being
written under it (which left a stale copy of the panel in the scrollback at every line). File
handlers (Hydra's job log) keep writing.

What it shows beyond counters: the best candidate by confirmed success (rate, counts, 95% lower
bound), the /done window being confirmed ("41/50 of candidate c3f2, 0.98"), and an ETA: when the
first budget cap would be reached at the rate it is being spent.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from enpire.judge.pools import NO_EVIDENCE
from enpire.track.confidence import Confirmed

PLAIN_EVERY_S = 5.0
LIVE_EVERY_S = 0.25  # = the live panel's refresh rate: snapshots in between would never be drawn
ETA_CAPS = ("robot_seconds", "trials", "iterations", "tokens", "trainer_seconds")


@dataclass(frozen=True)
class Confirmation:
    """The /done window of the candidate closest to /done: `trials` of its last `window` trials so far
    (pooled, plus those of its open iterations not pooled yet), their success rate, and the goal."""

    key: str
    trials: int
    window: int
    rate: float
    goal: float

    def text(self) -> str:
        return f"{self.trials}/{self.window} of candidate {self.key[:6]}, {self.rate:.2f} (goal {self.goal:.2f})"


@dataclass
class Snapshot:
    elapsed_s: float
    stations: list[str]  # per station: idle | busy <trial> | needs_reset (waits for a person) | faulty | starting
    iterations: int
    trials: int
    best_success_rate: float
    used: dict[str, float]
    limits: dict[str, float]
    agents: list[str] = field(default_factory=list)  # per agent: "name: thinking | 2 queued"
    last: str = ""  # the last iteration's one-line result
    best: Confirmed | None = None  # the best candidate by confirmed success (confidence.confirmed_best)
    confirming: Confirmation | None = None  # the /done window in progress (window_progress)
    session_id: str = ""  # the session's MLflow run id, once it exists (what enpire.ctl commands name)


def window_progress(pools: Mapping[str, list[bool]], open_evaluations: Iterable[Any], window: int,
                    goal: float) -> Confirmation | None:
    """The candidate with the most trials toward its /done window (then the most successes in it).

    `pools`: the idea tree's pooled outcomes per candidate key; `open_evaluations`: the scheduler's open
    Evaluations (key, records, pooled), whose trials not pooled yet count too (strict pools at close)."""
    outcomes = {k: list(v) for k, v in pools.items()}
    for ev in open_evaluations:
        fresh = [bool(r.pass_at_1) for r in list(ev.records)[ev.pooled:] if r.outcome not in NO_EVIDENCE]
        if fresh:
            outcomes.setdefault(ev.key, []).extend(fresh)
    best: tuple[int, int, str] | None = None
    for key, pool in outcomes.items():
        last = pool[-window:]
        if last and (best is None or (len(last), sum(last), key) > best):
            best = (len(last), sum(last), key)
    if best is None:
        return None
    n, s, key = best
    return Confirmation(key, n, window, s / n, goal)


def eta(snap: Snapshot) -> tuple[float, str] | None:
    """(seconds, cap): when the first budget cap is reached at the average rate it was spent so far."""
    out: tuple[float, str] | None = None
    t = max(snap.elapsed_s, 1e-9)
    for key in ETA_CAPS:
        used, cap = snap.used.get(key, 0.0), snap.limits.get(key, 0.0)
        if cap > 0 and used > 0:
            left = max(0.0, cap - used) / (used / t)
            if out is None or left < out[0]:
                out = (left, key)
    cap = snap.limits.get("wall_clock_s", 0.0)
    if cap > 0:
        left = max(0.0, cap - snap.used.get("wall_clock_s", snap.elapsed_s))
        if out is None or left < out[0]:
            out = (left, "wall_clock_s")
    return out


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def best_text(snap: Snapshot) -> str:
    if snap.best is not None:
        return snap.best.text()
    return f"{snap.best_success_rate:.2f}"


def eta_text(snap: Snapshot) -> str:
    found = eta(snap)
    return f"budget spent in ~{_duration(found[0])} ({found[1]})" if found else "no cap in use"


class _Handlers:
    """Swap console-bound log handlers for a RichHandler on the Live console, and back."""

    def __init__(self) -> None:
        self.removed: list[tuple[logging.Logger, logging.Handler]] = []
        self.added: list[tuple[logging.Logger, logging.Handler]] = []

    @staticmethod
    def _on_console(h: logging.Handler, streams: tuple[Any, ...]) -> bool:
        return isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) \
            and getattr(h, "stream", None) in streams

    def swap(self, console: Any, streams: tuple[Any, ...]) -> None:
        """`streams`: stdout and stderr as they were before the Live display redirected them."""
        from rich.logging import RichHandler

        streams = (*streams, sys.__stdout__, sys.__stderr__)
        loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values()
                                          if isinstance(v, logging.Logger) and v.handlers)]
        for logger in loggers:
            found = [h for h in logger.handlers if self._on_console(h, streams)]
            if not found and logger is not logging.getLogger():
                continue
            level = min((h.level for h in found), default=logging.NOTSET)
            for h in found:
                logger.removeHandler(h)
                self.removed.append((logger, h))
            if found or not logger.handlers:  # the root with no handler at all: warnings would go to stderr raw
                rich = RichHandler(level=level, console=console, show_path=False, markup=False,
                                   log_time_format="[%X]")
                rich.setFormatter(logging.Formatter("%(name)s: %(message)s"))
                logger.addHandler(rich)
                self.added.append((logger, rich))

    def restore(self) -> None:
        for logger, h in self.added:
            logger.removeHandler(h)
        for logger, h in self.removed:
            logger.addHandler(h)
        self.added, self.removed = [], []


class Progress:
    def __init__(self, title: str, live: bool | None = None, console: Any = None) -> None:
        self.title = title
        self.live = sys.stdout.isatty() if live is None else live
        self.console = console  # a rich Console (tests); default: rich's own on stdout
        self._last_plain = 0.0
        self._last_live = 0.0
        self._live: Any = None
        self._handlers = _Handlers()

    def __enter__(self) -> Progress:
        if self.live:
            from rich.live import Live

            streams = (sys.stdout, sys.stderr)  # what console handlers hold; Live replaces sys.stdout/err on enter
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
            self._handlers.swap(self._live.console, streams)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._handlers.restore()
            self._live.__exit__(None, None, None)
            self._live = None

    def due(self) -> bool:
        """Whether an update now would be shown: the loop builds a snapshot (which reads every candidate's
        pool) only then, so a long session does not pay for it on every pass."""
        now = time.monotonic()
        return now - (self._last_live if self._live is not None else self._last_plain) >= (
            LIVE_EVERY_S if self._live is not None else PLAIN_EVERY_S)

    def update(self, snap: Snapshot, force: bool = False) -> None:
        if self._live is not None:
            self._last_live = time.monotonic()
            self._live.update(self._panel(snap))
            return
        now = time.monotonic()
        if force or now - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = now
            print(self.line(snap), flush=True)

    def line(self, snap: Snapshot) -> str:
        busy = sum(s.startswith("busy") for s in snap.stations)
        faulty = sum(s == "faulty" for s in snap.stations)
        person = [str(i) for i, s in enumerate(snap.stations) if s == "needs_reset"]
        out = (f" ({faulty} faulty)" if faulty else "") + (
            f" (station {', '.join(person)} needs a person: python -m enpire.ctl reset-done "
            f"{snap.session_id or 'SESSION_ID'} N)"
            if person else "")
        confirming = f" | /done window {snap.confirming.text()}" if snap.confirming is not None else ""
        return (f"[enpire {snap.elapsed_s:7.1f}s] stations {busy}/{len(snap.stations)} busy"
                f"{out} | iterations {snap.iterations} | trials {snap.trials} | "
                f"best {best_text(snap)}{confirming} | robot {snap.used.get('robot_seconds', 0):.0f}/"
                f"{snap.limits.get('robot_seconds', 0):.0f} s | {eta_text(snap)} | {snap.last}")

    def _panel(self, snap: Snapshot) -> Any:
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for i, s in enumerate(snap.stations):
            style = "green" if s.startswith("busy") else ("red" if s == "faulty" else
                                                          "bold magenta" if s == "needs_reset" else "yellow")
            shown = (f"needs a person (python -m enpire.ctl reset-done {snap.session_id or 'SESSION_ID'} {i})"
                     if s == "needs_reset" else s)
            grid.add_row(f"station {i}", f"[{style}]{shown}[/{style}]")
        for a in snap.agents:
            grid.add_row("agent", a)
        grid.add_row("iterations", f"{snap.iterations} / {snap.limits.get('iterations', 0):.0f}")
        grid.add_row("trials", f"{snap.trials} / {snap.limits.get('trials', 0):.0f}")
        grid.add_row("best success", best_text(snap))
        if snap.confirming is not None:
            c = snap.confirming
            bar = Table.grid(padding=(0, 1))
            bar.add_row(ProgressBar(total=c.window, completed=c.trials, width=24, complete_style="green",
                                    finished_style="green"), c.text())
            grid.add_row("/done window", bar)
        for key in ("robot_seconds", "wall_clock_s", "tokens"):
            used, cap = snap.used.get(key, 0.0), snap.limits.get(key, 0.0)
            grid.add_row(key, f"{used:.0f} / {cap:.0f} ({100 * used / cap if cap else 0:.0f}%)")
        grid.add_row("ETA", eta_text(snap))
        if snap.last:
            grid.add_row("last", snap.last)
        return Panel(grid, title=f"{self.title}  {snap.elapsed_s:.0f} s")
