"""The live progress display: a rich panel on a terminal, plain log lines otherwise.

The loop calls `update(snapshot)` often; this module decides how often to redraw (4 Hz on a
terminal, a line every PLAIN_EVERY_S seconds when stdout is a file or a pipe).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

PLAIN_EVERY_S = 5.0


@dataclass
class Snapshot:
    elapsed_s: float
    stations: list[str]  # per station: idle | busy <trial> | faulty | starting
    iterations: int
    trials: int
    best_success_rate: float
    used: dict[str, float]
    limits: dict[str, float]
    agents: list[str] = field(default_factory=list)  # per agent: "name: thinking | 2 queued"
    last: str = ""  # the last iteration's one-line result


class Progress:
    def __init__(self, title: str, live: bool | None = None) -> None:
        self.title = title
        self.live = sys.stdout.isatty() if live is None else live
        self._last_plain = 0.0
        self._live: Any = None

    def __enter__(self) -> Progress:
        if self.live:
            from rich.live import Live

            self._live = Live(refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def update(self, snap: Snapshot, force: bool = False) -> None:
        if self._live is not None:
            self._live.update(self._panel(snap))
            return
        now = time.monotonic()
        if force or now - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = now
            print(self.line(snap), flush=True)

    def line(self, snap: Snapshot) -> str:
        busy = sum(s.startswith("busy") for s in snap.stations)
        faulty = sum(s == "faulty" for s in snap.stations)
        return (f"[enpire {snap.elapsed_s:7.1f}s] stations {busy}/{len(snap.stations)} busy"
                f"{f' ({faulty} faulty)' if faulty else ''} | iterations {snap.iterations} | trials {snap.trials} | "
                f"best {snap.best_success_rate:.2f} | robot {snap.used.get('robot_seconds', 0):.0f}/"
                f"{snap.limits.get('robot_seconds', 0):.0f} s | {snap.last}")

    def _panel(self, snap: Snapshot) -> Any:
        from rich.panel import Panel
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for i, s in enumerate(snap.stations):
            style = "green" if s.startswith("busy") else ("red" if s == "faulty" else "yellow")
            grid.add_row(f"station {i}", f"[{style}]{s}[/{style}]")
        for a in snap.agents:
            grid.add_row("agent", a)
        grid.add_row("iterations", f"{snap.iterations} / {snap.limits.get('iterations', 0):.0f}")
        grid.add_row("trials", f"{snap.trials} / {snap.limits.get('trials', 0):.0f}")
        grid.add_row("best success", f"{snap.best_success_rate:.3f}")
        for key in ("robot_seconds", "wall_clock_s", "tokens"):
            used, cap = snap.used.get(key, 0.0), snap.limits.get(key, 0.0)
            grid.add_row(key, f"{used:.0f} / {cap:.0f} ({100 * used / cap if cap else 0:.0f}%)")
        if snap.last:
            grid.add_row("last", snap.last)
        return Panel(grid, title=f"{self.title}  {snap.elapsed_s:.0f} s")
