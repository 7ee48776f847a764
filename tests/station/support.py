"""Helpers of the station tests: real `python -m enpire.station serve` subprocesses on loopback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "loopback-test-token-7f3a"
READY = re.compile(r"enpire\.station: serving \S+ on (\S+):(\d+)")


def env(token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    out = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "PYTHONUNBUFFERED": "1", **extra}
    out.pop("ENPIRE_STATION_TOKEN", None)
    if token is not None:
        out["ENPIRE_STATION_TOKEN"] = token
    return out


class StationServer:
    """One station server subprocess on 127.0.0.1 (a free port); `address` once it serves."""

    def __init__(self, work: Path, *overrides: str, watchdog_s: float = 0.2, realtime: float | None = None,
                 token: str = TOKEN) -> None:
        self.work = work
        args = [sys.executable, "-m", "enpire.station", "serve", "task=drawer", *overrides, "--port", "0",
                "--watchdog-s", str(watchdog_s), "--work-dir", str(work)]
        if realtime is not None:
            args += ["--realtime-factor", str(realtime)]
        self.log = work.with_suffix(".log")
        work.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env(token), stdout=subprocess.PIPE, stderr=self._log,
                                     text=True)
        self.address = ""
        self._ready = threading.Event()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            m = READY.search(line)
            if m:
                self.address = f"{m.group(1)}:{m.group(2)}"
                self._ready.set()

    def wait_ready(self, timeout: float = 90.0) -> str:
        if not self._ready.wait(timeout):
            raise AssertionError(f"station did not start: {self.log.read_text()[-2000:]}")
        return self.address

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()

    def __enter__(self) -> StationServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def servers(tmp: Path, n: int, *overrides: str, **kw: Any) -> list[StationServer]:
    out = [StationServer(tmp / f"station{i}", *overrides, **kw) for i in range(n)]
    for s in out:
        s.wait_ready()
    return out


def wait_for(predicate: Any, timeout: float, every: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")
