"""A real `mlflow server` subprocess on loopback for the tracking-server tests, that a test can kill and start
again on the same port and store (an outage, as a restarted or crashed server looks to its clients)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MLFLOW = str(Path(sys.executable).parent / "mlflow")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlflowServer:
    """`mlflow server` with `backend` (a SQLite or PostgreSQL URI) and a local artifact root it proxies."""

    def __init__(self, work: Path, backend: str, port: int | None = None) -> None:
        self.work, self.backend = work, backend
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120.0) -> float:
        """Start the server and wait until it answers; the seconds that took."""
        self.work.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = open(self.work / f"server-{self.starts}.log", "wb")  # noqa: SIM115
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        began = time.monotonic()
        self.proc = subprocess.Popen(
            [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", self.backend, "--artifacts-destination", str(self.work / "artifacts")],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = began + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mlflow server exited: {(self.work / f'server-{self.starts}.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return time.monotonic() - began
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"mlflow server did not answer within {timeout_s} s")

    def kill(self) -> None:
        """SIGKILL the server and its workers at once: connections refused until it is started again."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
