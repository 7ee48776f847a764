"""The sandbox's parent side: one child process running untrusted policy code, under deadlines.

The parent never trusts the child with time: every request has a deadline computed here
(per step, and a per-trial allowance of compute seconds the child cannot refill), and when it
passes the child's whole process group, its pid namespace and its cgroup are killed with
SIGKILL, which cannot be caught or ignored. CPU the sandbox burns between requests (background
threads, forked helpers) is measured on its cgroup and charged to the same allowance. Only
JSON observations go in and JSON actions come out; replies are size-capped so a flood cannot
exhaust the parent's memory. The child hardens itself (`sandbox_child.py`) before it runs a
line of agent code; the environment it starts with is a whitelist built here, so secrets in
the parent's environment never reach it, and its stderr is an unlinked file only this
process holds. Totals (memory, tasks, CPU, kill) come from a cgroup per sandbox
(`sandbox_cgroup.py`); which of them are off on this machine is in `protections["totals"]`.
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

from enpire.policy.sandbox_cgroup import SandboxCgroup, kill_uid, pids_of_uid

__all__ = ["Sandbox", "SandboxCrash", "SandboxError", "SandboxLimits", "SandboxTimeout", "kill_uid", "pids_of_uid"]

log = logging.getLogger(__name__)

CHILD = Path(__file__).with_name("sandbox_child.py")
_UIDS = itertools.count()
CPU_WINDOW_S = 0.01  # how often (at most) the sandbox's CPU is read: once every ~10 control steps
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
    cpu_s: int = 60  # RLIMIT_CPU, the kernel's backstop (per process)
    memory_mb: int = 1024  # RLIMIT_AS per process, and the total of all its processes (cgroup)
    file_size_mb: int = 16  # RLIMIT_FSIZE: the largest file
    max_processes: int = 16  # RLIMIT_NPROC (on the sandbox's own uid), and its total tasks (cgroup pids.max)
    open_files: int = 64  # RLIMIT_NOFILE
    max_message_kb: int = 256  # largest reply the parent reads
    namespaces: bool = True  # new network/mount/pid/IPC namespaces where the machine allows
    hide_paths: tuple[str, ...] = ()  # extra directories (empty read-only tmpfs) or files (empty file)
    disk_mb: int = 0  # total it may write (private dir + /dev/shm, one tmpfs); 0 = 2 x file_size_mb
    max_files: int = 1024  # inodes in that tmpfs

    @property
    def disk_total_mb(self) -> int:
        return self.disk_mb or max(1, 2 * self.file_size_mb)

    @classmethod
    def from_config(cls, cfg: Any) -> SandboxLimits:
        known = {k: v for k, v in dict(cfg or {}).items() if k in cls.__dataclass_fields__}
        if "hide_paths" in known:
            known["hide_paths"] = tuple(known["hide_paths"])
        return cls(**known)


def default_hidden_paths(extra: tuple[str, ...] = ()) -> list[str]:
    """Paths that may hold secrets or stores: home directories, ./outputs, and what the caller adds
    (`enpire.policy.sandbox_paths.session_paths`: the session's store, artifacts, control and run dirs)."""
    paths = [str(Path.home()), "/root", "/home", str(Path.cwd() / "outputs"), *extra]
    return sorted({str(Path(p).resolve()) for p in paths})


@dataclass
class SandboxStats:
    requests: int = 0
    compute_s: float = 0.0  # charged to the trial: wall time of requests + CPU outside them
    background_s: float = 0.0  # of which: CPU used between or beside requests
    protections: dict[str, Any] = field(default_factory=dict)


def _allocate_uid() -> int:
    """A uid no other sandbox alive on this machine has: unique per (process, 64 sandboxes of it)."""
    return 0x10000000 + (os.getpid() % (1 << 22)) * 64 + next(_UIDS) % 64


class Sandbox:
    """One sandboxed child running a policy source. Not thread-safe; one per station."""

    def __init__(self, source: str, limits: SandboxLimits | None = None, name: str = "policy") -> None:
        self.limits = limits or SandboxLimits()
        self.name = name
        self.stats = SandboxStats()
        self.workdir = Path(tempfile.mkdtemp(prefix="enpire-sbx-"))
        self.uid: int | None = None
        if os.geteuid() == 0:  # a uid of its own: no file of ours is writable, NPROC counts only it
            self.uid = _allocate_uid()
            os.chown(self.workdir, self.uid, self.uid)
        os.chmod(self.workdir, 0o700)
        src = self.workdir / "policy.py"
        src.write_text(source)
        os.chmod(src, 0o444)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - unlinked: no other process can open it
        self.cgroup = SandboxCgroup(f"enpire-sbx-{self.uid}" if self.uid is not None else self.workdir.name,
                                    self.limits.memory_mb, self.limits.max_processes)
        cfg = {**asdict(self.limits), "workdir": str(self.workdir), "source_path": str(src), "uid": self.uid,
               "hide_paths": default_hidden_paths(self.limits.hide_paths), "parent_pid": os.getpid(),
               "cgroup_procs": self.cgroup.procs_files(), "disk_mb": self.limits.disk_total_mb}
        env = {**SAFE_ENV, "HOME": str(self.workdir), "TMPDIR": str(self.workdir)}
        self.pid1: int | None = None
        self.closed = False
        self._cpu_mark: float | None = None  # CPU of the sandbox at the last reading, and when it was taken
        self._cpu_mark_t = 0.0
        self._wall_in_window = 0.0  # wall time of the requests since that reading
        self._budget_bound = False
        self._oom = False
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", str(CHILD), json.dumps(cfg)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=self._stderr, env=env, cwd=str(self.workdir),
                start_new_session=True, bufsize=0,
            )
        except BaseException:
            self.cgroup.remove()
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
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
            self.close()  # nothing of a failed start may linger: processes, cgroups, private directory
            raise
        self.stats.protections = prot = hello.get("protections", {})
        if not prot.get("cgroups_joined", False):
            self.cgroup.disown()
        prot["totals"] = dict(self.cgroup.totals)
        if prot["totals"]["cpu"] == "off" and self.pid1:
            prot["totals"]["cpu"] = "process (the policy process and the children it reaped)"
        prot["totals"]["disk"] = "tmpfs" if prot.get("disk_total") else "off"
        self._cpu_mark, self._cpu_mark_t = self._cpu_now(), time.monotonic()
        log.info("sandbox %s started (pid %s): %s", name, self.proc.pid, self.protection_summary())

    # -- requests -------------------------------------------------------------------------

    def request(self, msg: dict[str, Any], budget_s: float | None = None) -> dict[str, Any]:
        """Send one request and wait for its reply, at most step_timeout_s (or budget_s if smaller).

        Charged to stats.compute_s: the request's wall time, plus the CPU the whole sandbox used
        beyond the wall time of its requests (background threads or processes between requests,
        several threads at once during one), measured over windows of CPU_WINDOW_S: work hidden
        from the request clock still uses up the trial.
        """
        if self.closed:
            raise SandboxCrash("the sandboxed policy is no longer running")
        what = msg.get("op", "?")
        start = time.monotonic()
        if self._cpu_mark is not None and start - self._cpu_mark_t >= CPU_WINDOW_S:
            extra = self._charge_cpu(start)
            if budget_s is not None:
                budget_s -= extra
                if budget_s <= 0:
                    self.kill()
                    raise SandboxTimeout(f"policy used its compute for this trial outside requests "
                                         f"({self.stats.background_s:.2f} s of CPU in background threads or processes)"
                                         f"{self._stderr_tail()}")
        allowed = self.limits.step_timeout_s if budget_s is None else min(self.limits.step_timeout_s, budget_s)
        self._budget_bound = allowed < self.limits.step_timeout_s  # the trial's allowance ends first
        deadline = start + max(0.0, allowed)
        try:
            self._write(json.dumps(msg).encode(), deadline, what)
            reply = self._read(deadline, what)
        finally:
            wall = time.monotonic() - start
            self.stats.requests += 1
            self.stats.compute_s += wall
            self._wall_in_window += wall
        if not reply.get("ok"):
            raise SandboxCrash(f"policy raised in {what}():\n{reply.get('error', '')}")
        return reply

    def _charge_cpu(self, now: float) -> float:
        """CPU used since the last reading beyond the wall time of the requests in between: charged."""
        cpu = self._cpu_now()
        if cpu is None or self._cpu_mark is None:
            return 0.0
        extra = max(0.0, cpu - self._cpu_mark - self._wall_in_window)
        self._cpu_mark, self._cpu_mark_t, self._wall_in_window = cpu, now, 0.0
        self.stats.compute_s += extra
        self.stats.background_s += extra
        return extra

    def _cpu_now(self) -> float | None:
        """CPU seconds of the whole sandbox (its cgroup), else of the policy process; None if unreadable."""
        return None if self.closed else self.cgroup.cpu_seconds(fallback_pid=self.pid1)

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
        if self._budget_bound:
            raise SandboxTimeout(f"policy {what}() ran out of this trial's compute and was killed "
                                 f"({self.stats.background_s:.2f} s of it CPU outside requests){self._stderr_tail()}")
        raise SandboxTimeout(f"policy {what}() missed its deadline and was killed{self._stderr_tail()}")

    def _fail_dead(self, what: str) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=0.1)  # the supervisor exits as its policy process did: report that signal
        self.kill()
        code = self.proc.returncode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        if self._oom:
            how += f"; its processes together went over memory_mb={self.limits.memory_mb}"
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
        flags = ["network_namespace", "mount_namespace", "pid_namespace", "ipc_namespace", "readonly_filesystem",
                 "no_new_privs", "seccomp"]
        on = [f for f in flags if p.get(f)] + ([f"uid={p['uid']}"] if p.get("uid") else [])
        off = [f for f in flags if not p.get(f)]
        return (f"on: {', '.join(on) or 'none'}; off: {', '.join(off) or 'none'}; "
                f"totals off: {', '.join(self.totals_off()) or 'none'}; rlimits: {p.get('rlimits', {})}")

    def totals_off(self) -> list[str]:
        """Which per-sandbox totals (memory, pids, cpu, kill, disk) this machine could not enforce."""
        return [t for t, where in self.stats.protections.get("totals", {}).items() if where == "off"]

    def alive(self) -> bool:
        return not self.closed and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the child's process group, its pid namespace, its cgroup and any process left on its uid."""
        if self.closed:
            return
        self.closed = True
        self._oom = self.cgroup.oom_kills() > 0
        doomed = {*self.cgroup.pids(), *(p for p in (self.pid1,) if p)}  # waited for until dead, not just signalled
        for kill, target in ((os.killpg, self.proc.pid), (os.kill, self.pid1), (os.kill, self.proc.pid)):
            if target:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(target, signal.SIGKILL)
        self.cgroup.kill(also=doomed)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2.0)
        if self.uid is not None and self.cgroup.totals.get("kill") == "off":
            kill_uid(self.uid)  # without cgroup.kill: what left the process group and the pid namespace
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]

    def close(self) -> None:
        """Ask the child to stop, then kill whatever is left and remove its private directory."""
        if not self.closed and self.proc.poll() is None:
            with contextlib.suppress(SandboxError, OSError):
                self._write(json.dumps({"op": "close"}).encode(), time.monotonic() + 0.2, "close")
        self.kill()
        self.cgroup.remove()
        with contextlib.suppress(OSError):
            self._stderr.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
