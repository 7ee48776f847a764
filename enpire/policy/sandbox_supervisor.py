"""The sandbox supervisor: the first of the child's two processes, which never runs agent code.

It stays in the station's namespaces (only the pid namespace it created is new, and only for
its child), moves the policy process into the sandbox's cgroups, and then only waits: for the
policy process to end (it exits the same way, so the station reports the real signal), or for
the station to die, however it dies (a pidfd on the station process; polling `getppid` where
pidfds are missing). Then it kills the whole sandbox (the pid namespace's init, the cgroup
through `cgroup.kill`, every live process of the sandbox uid), removes its cgroups and private
directory, and exits: nothing of a sandbox outlives its station. It never reads a byte from
the policy. Imported by sandbox_child.py; imports nothing from enpire.
"""

from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import time


def join_cgroups(cfg: dict, child: int) -> list[str]:
    """Move the policy process into every cgroup of the sandbox; what failed.

    Done by the supervisor while the policy process sets itself up: the first cgroup migration
    waits for an RCU grace period (~10 ms here), which then overlaps the child's imports. The
    child waits for the result before it drops privileges or runs anything of the agent's,
    and it forks nothing before that, so everything of the agent's is counted."""
    failed = []
    for path in cfg.get("cgroup_procs", []):
        try:
            with open(path, "w") as f:
                f.write(str(child))
        except OSError as e:
            failed.append(f"{path}: {e.strerror}")
    return failed


def watch_parent(parent: int) -> int | None:
    """A pidfd of the station process (None where pidfds are missing; -1 if it is already gone)."""
    try:
        fd = os.pidfd_open(parent)
    except (AttributeError, OSError):
        fd = None
    return fd if os.getppid() == parent else -1


def process_alive(pid: int) -> bool:
    """Is `pid` a live process (not a zombie)? Stdlib only: the supervisor and the parent's cgroup code share it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def _kill_sandbox(cfg: dict, child: int) -> None:
    """The station is gone: kill everything of this sandbox, remove what it left, wait briefly."""
    procs, uid = cfg.get("cgroup_procs", []), cfg.get("uid")
    for path in procs:
        try:
            with open(os.path.join(os.path.dirname(path), "cgroup.kill"), "w") as f:
                f.write("1")
        except OSError:
            pass
    deadline = time.monotonic() + 2.0
    while True:
        pids = {child}
        for path in procs:
            try:
                with open(path) as f:
                    pids |= {int(p) for p in f.read().split()}
            except (OSError, ValueError):
                pass
        if uid is not None:  # what left the cgroup-less machine's process group: same uid
            for entry in os.listdir("/proc"):
                try:
                    if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid:
                        pids.add(int(entry))
                except OSError:
                    pass
        pids = {p for p in pids if process_alive(p)}
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(child, os.WNOHANG)
        except ChildProcessError:
            pass
        if not pids or time.monotonic() > deadline:
            break
        time.sleep(0.005)
    for path in procs:
        for _ in range(100):
            try:
                os.rmdir(os.path.dirname(path))
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.005)
    shutil.rmtree(cfg["workdir"], ignore_errors=True)


def supervise(cfg: dict, child: int, parent_fd: int | None) -> None:
    """Wait for the policy process (exit as it did) or the station's death (kill the sandbox, exit)."""
    parent = cfg["parent_pid"]
    try:
        child_fd: int | None = os.pidfd_open(child)
    except (AttributeError, OSError):
        child_fd = None
    poller = select.poll()
    for fd in (parent_fd, child_fd):
        if fd is not None and fd >= 0:
            poller.register(fd, select.POLLIN)
    timeout = None if child_fd is not None and parent_fd is not None else 100
    while True:
        if parent_fd == -1 or os.getppid() != parent:
            _kill_sandbox(cfg, child)
            os._exit(0)
        ready = {fd for fd, _ in poller.poll(timeout)}
        if parent_fd is not None and parent_fd in ready:
            parent_fd = -1
            continue
        done, status = os.waitpid(child, os.WNOHANG)
        if not done:
            continue
        code = os.waitstatus_to_exitcode(status)
        if code == 0 and _parent_exits(parent, parent_fd):
            # a clean exit is what a policy process does when its pipes close, and they close *before* the
            # station's death is visible on its pidfd: wait for that, then clean up for the dead station
            _kill_sandbox(cfg, child)
            os._exit(0)
        if code < 0:  # die the way it died, so the station reports the signal
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if -code not in (signal.SIGKILL, signal.SIGSTOP):
                signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code & 0xFF)


def _parent_exits(parent: int, parent_fd: int | None, wait_s: float = 1.0) -> bool:
    """Whether the station dies within `wait_s` (a living station SIGKILLs us well before that)."""
    if parent_fd is not None and parent_fd >= 0:
        return bool(select.select([parent_fd], [], [], wait_s)[0])
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if os.getppid() != parent:
            return True
        time.sleep(0.02)
    return os.getppid() != parent


def start(cfg: dict, child: int, parent_fd: int | None, go_w: int) -> None:
    """The supervisor's whole life after the fork: cgroups, hand over, wait. Never returns."""
    try:
        os.write(go_w, json.dumps(join_cgroups(cfg, child)).encode())
        os.close(go_w)
    except OSError:  # the policy process is already gone: supervise() reports how it ended
        pass
    supervise(cfg, child, parent_fd)
    os._exit(0)
