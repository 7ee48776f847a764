"""The sandbox's parent side: one child process running untrusted policy code, under deadlines.

The parent never trusts the child with time: every request has a deadline computed here
(per step, and a per-trial allowance of compute seconds the child cannot refill), and when it
passes the child's whole process group and its pid namespace are killed with SIGKILL, which
cannot be caught or ignored. Only JSON observations go in and JSON actions come out; replies
are size-capped so a flood cannot exhaust the parent's memory. The child hardens itself
(`sandbox_child.py`) before it runs a line of agent code; the environment it starts with is a
whitelist built here, so secrets in the parent's environment never reach it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CHILD = Path(__file__).with_name("sandbox_child.py")
_UIDS = itertools.count()
SAFE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}


class SandboxError(RuntimeError):
    """The sandboxed policy failed; the message is what the agent is told (its traceback included)."""


class SandboxTimeout(SandboxError):
    """A deadline passed; the child was killed."""


class SandboxCrash(SandboxError):
    """The child raised, died, or broke the protocol."""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed policy process (conf/policy/code.yaml `sandbox`)."""

    start_timeout_s: float = 10.0  # interpreter start + import + construct the policy
    step_timeout_s: float = 0.5  # one reset() or act()
    trial_timeout_s: float = 60.0  # compute seconds the policy may use over one trial
    cpu_s: int = 60  # RLIMIT_CPU, the kernel's backstop
    memory_mb: int = 1024  # RLIMIT_AS
    file_size_mb: int = 16  # RLIMIT_FSIZE
    max_processes: int = 16  # RLIMIT_NPROC (counted on the sandbox's own uid)
    open_files: int = 64  # RLIMIT_NOFILE
    max_message_kb: int = 256  # largest reply the parent reads
    namespaces: bool = True  # new network/mount/pid namespaces where the machine allows
    hide_paths: tuple[str, ...] = ()  # extra directories replaced by an empty read-only tmpfs

    @classmethod
    def from_config(cls, cfg: Any) -> SandboxLimits:
        known = {k: v for k, v in dict(cfg or {}).items() if k in cls.__dataclass_fields__}
        if "hide_paths" in known:
            known["hide_paths"] = tuple(known["hide_paths"])
        return cls(**known)


def default_hidden_paths(extra: tuple[str, ...] = ()) -> list[str]:
    """Directories that may hold secrets or stores: home directories and the local MLflow outputs."""
    paths = [str(Path.home()), "/root", "/home", str(Path.cwd() / "outputs"), *extra]
    return sorted({str(Path(p).resolve()) for p in paths})


@dataclass
class SandboxStats:
    requests: int = 0
    compute_s: float = 0.0
    protections: dict[str, Any] = field(default_factory=dict)


class Sandbox:
    """One sandboxed child running a policy source. Not thread-safe; one per station."""

    def __init__(self, source: str, limits: SandboxLimits | None = None, name: str = "policy") -> None:
        self.limits = limits or SandboxLimits()
        self.name = name
        self.stats = SandboxStats()
        self.workdir = Path(tempfile.mkdtemp(prefix="enpire-sbx-"))
        self.uid: int | None = None
        if os.geteuid() == 0:  # a uid of its own: no file of ours is writable, NPROC counts only it
            self.uid = 200000 + (os.getpid() % 5000) * 100 + next(_UIDS) % 100
            os.chown(self.workdir, self.uid, self.uid)
        os.chmod(self.workdir, 0o700)
        src = self.workdir / "policy.py"
        src.write_text(source)
        os.chmod(src, 0o444)
        self._stderr = open(self.workdir.parent / f"{self.workdir.name}.stderr", "w+b")  # noqa: SIM115
        cfg = {**asdict(self.limits), "workdir": str(self.workdir), "source_path": str(src), "uid": self.uid,
               "hide_paths": default_hidden_paths(self.limits.hide_paths)}
        env = {**SAFE_ENV, "HOME": str(self.workdir), "TMPDIR": str(self.workdir)}
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(CHILD), json.dumps(cfg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, env=env, cwd=str(self.workdir), start_new_session=True, bufsize=0,
        )
        self.pid1: int | None = None
        self.closed = False
        os.set_blocking(self.proc.stdin.fileno(), False)  # type: ignore[union-attr]
        try:
            deadline = time.monotonic() + self.limits.start_timeout_s
            hello = self._read(deadline, "start-up")
            if "pid1" in hello:
                self.pid1 = int(hello["pid1"])
                hello = self._read(deadline, "start-up")
            if not hello.get("ok"):
                raise SandboxCrash(f"policy failed to load:\n{hello.get('error', '')}")
        except BaseException:
            self.close()  # nothing of a failed start may linger: process, private directory, stderr file
            raise
        self.stats.protections = hello.get("protections", {})
        log.info("sandbox %s started (pid %s): %s", name, self.proc.pid, self.protection_summary())

    # -- requests -------------------------------------------------------------------------

    def request(self, msg: dict[str, Any], budget_s: float | None = None) -> dict[str, Any]:
        """Send one request and wait for its reply, at most step_timeout_s (or budget_s if smaller)."""
        if self.closed:
            raise SandboxCrash("the sandboxed policy is no longer running")
        allowed = self.limits.step_timeout_s if budget_s is None else min(self.limits.step_timeout_s, budget_s)
        start = time.monotonic()
        deadline = start + max(0.0, allowed)
        try:
            self._write(json.dumps(msg).encode(), deadline, msg.get("op", "?"))
            reply = self._read(deadline, msg.get("op", "?"))
        finally:
            self.stats.requests += 1
            self.stats.compute_s += time.monotonic() - start
        if not reply.get("ok"):
            raise SandboxCrash(f"policy raised in {msg.get('op')}():\n{reply.get('error', '')}")
        return reply

    def _write(self, body: bytes, deadline: float, what: str) -> None:
        data = struct.pack(">I", len(body)) + body
        fd = self.proc.stdin.fileno()  # type: ignore[union-attr]
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_WRITE)
            while data:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self._fail_timeout(what, deadline)
                try:
                    data = data[os.write(fd, data):]
                except (BrokenPipeError, BlockingIOError) as e:
                    if isinstance(e, BlockingIOError):
                        continue
                    self._fail_dead(what)

    def _read(self, deadline: float, what: str) -> dict[str, Any]:
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        limit = self.limits.max_message_kb * 1024

        def exactly(n: int) -> bytes:
            buf = b""
            with selectors.DefaultSelector() as sel:
                sel.register(fd, selectors.EVENT_READ)
                while len(buf) < n:
                    left = deadline - time.monotonic()
                    if left <= 0 or not sel.select(left):
                        self._fail_timeout(what, deadline)
                    chunk = os.read(fd, n - len(buf))
                    if not chunk:
                        self._fail_dead(what)
                    buf += chunk
            return buf

        size = struct.unpack(">I", exactly(4))[0]
        if size > limit:
            self.kill()
            raise SandboxCrash(f"policy sent a {size}-byte message in {what}(); the limit is {limit} bytes")
        try:
            reply = json.loads(exactly(size))
        except ValueError as e:
            self.kill()
            raise SandboxCrash(f"policy sent a malformed message in {what}(): {e}") from None
        if not isinstance(reply, dict):
            self.kill()
            raise SandboxCrash(f"policy sent {type(reply).__name__} in {what}(); expected a JSON object")
        return reply

    def _fail_timeout(self, what: str, deadline: float) -> None:
        self.kill()
        raise SandboxTimeout(f"policy {what}() missed its deadline and was killed{self._stderr_tail()}")

    def _fail_dead(self, what: str) -> None:
        self.kill()
        code = self.proc.returncode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        raise SandboxCrash(f"policy process died during {what}() ({how}){self._stderr_tail()}")

    def _stderr_tail(self, n: int = 2000) -> str:
        try:
            self._stderr.flush()
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - n))
            text = self._stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return f"; its stderr ends:\n{text}" if text else ""

    # -- lifetime ------------------------------------------------------------------------

    def protection_summary(self) -> str:
        p = self.stats.protections
        flags = ["network_namespace", "mount_namespace", "pid_namespace", "readonly_filesystem", "no_new_privs",
                 "seccomp"]
        on = [f for f in flags if p.get(f)] + ([f"uid={p['uid']}"] if p.get("uid") else [])
        off = [f for f in flags if not p.get(f)]
        return f"on: {', '.join(on) or 'none'}; off: {', '.join(off) or 'none'}; rlimits: {p.get('rlimits', {})}"

    def alive(self) -> bool:
        return not self.closed and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the child's process group, its pid namespace, and any process left on its uid."""
        if self.closed:
            return
        self.closed = True
        for kill, target in ((os.killpg, self.proc.pid), (os.kill, self.pid1), (os.kill, self.proc.pid)):
            if target:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(target, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2.0)
        if self.uid is not None:
            kill_uid(self.uid)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]

    def close(self) -> None:
        """Ask the child to stop, then kill whatever is left and remove its private directory."""
        if not self.closed and self.proc.poll() is None:
            with contextlib.suppress(SandboxError, OSError):
                self._write(json.dumps({"op": "close"}).encode(), time.monotonic() + 0.2, "close")
        self.kill()
        with contextlib.suppress(OSError):
            self._stderr.close()
            os.unlink(self._stderr.name)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pids_of_uid(uid: int) -> list[int]:
    """Live processes whose real uid is `uid`, zombies excluded (from /proc; empty where unreadable)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid and fields["State"].split()[0] not in ("Z", "X"):
                out.append(int(entry.name))
        except (OSError, ValueError, KeyError):
            continue
    return out


def kill_uid(uid: int, wait_s: float = 1.0) -> None:
    """SIGKILL every process of the sandbox's own uid, and wait (briefly) until none is left."""
    deadline = time.monotonic() + wait_s
    while pids := pids_of_uid(uid):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            log.warning("sandbox uid %d: processes %s survive SIGKILL", uid, pids)
            return
        time.sleep(0.005)
