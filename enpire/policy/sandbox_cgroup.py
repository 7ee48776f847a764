"""Totals per sandbox: one control group per sandboxed child, made by the parent before it starts.

rlimits are per process (RLIMIT_AS, RLIMIT_CPU) or per uid (RLIMIT_NPROC): a policy that forks
holds memory_mb in every child, and CPU burnt by background threads between requests is
charged to nobody. A cgroup sums them: `memory.max` caps the memory of every process of the
sandbox together (its private tmpfs included: tmpfs pages are charged to the writer),
`pids.max` every task, `cpu.stat` measures all the CPU they used (the parent charges the part
spent outside requests to the trial's compute allowance), and `cgroup.kill` ends them all at
once, whatever session or process group they moved to.

Where it comes from, per total, first that works:
- cgroup v2 (the unified hierarchy, `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`): a child of
  this process's own cgroup, using the controllers already enabled there (we never write the
  `cgroup.subtree_control` of a group we did not create); `cgroup.kill` and `cpu.stat` exist
  in every v2 group, controllers or not.
- cgroup v1 (hybrid machines): a child of this process's own group in the `memory` and `pids`
  hierarchies (so a limit the machine put on us still contains the sandbox).
- off: the sandbox still runs; `totals` says which are off and why, and it is logged.

The supervisor (sandbox_supervisor.py) moves the policy process into every directory before
it forks or runs any agent code; the parent removes the directories when the sandbox closes
(the supervisor does when the station dies first). Also here: the processes of a sandbox uid,
for machines without `cgroup.kill`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

from enpire.policy.sandbox_supervisor import process_alive

log = logging.getLogger(__name__)

TOTALS = ("memory", "pids", "cpu", "kill")
_V1_CONTROLLERS = ("memory", "pids")
_WARNED: set[tuple[str, ...]] = set()
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _mounts() -> list[tuple[str, str, list[str]]]:
    """(mount point, fs type, options) of every cgroup file system."""
    out = []
    with contextlib.suppress(OSError), open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
                out.append((parts[1], parts[2], parts[3].split(",")))
    return out


def _own_groups() -> dict[str, str]:
    """Controller name (or '' for the v2 hierarchy) -> this process's group path."""
    groups: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/self/cgroup") as f:
        for line in f:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) != 3:
                continue
            _, names, path = parts
            for name in (names.split(",") if names else [""]):
                groups[name] = path
    return groups


def _controllers(d: Path, children: bool = False) -> set[str]:
    """Controllers of group `d` (or, with children=True, those it hands to its children)."""
    try:
        return set((d / ("cgroup.subtree_control" if children else "cgroup.controllers")).read_text().split())
    except OSError:
        return set()


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


class SandboxCgroup:
    """The control groups of one sandbox. `totals[name]` says where each total is enforced, or why not."""

    def __init__(self, name: str, memory_mb: int, max_pids: int) -> None:
        self.dirs: list[Path] = []
        self.totals: dict[str, str] = {}
        self._cpu_file: Path | None = None
        self._cpu_fd: int | None = None
        self._kill_file: Path | None = None
        mounts, own = _mounts(), _own_groups()
        v2 = next((m for m, fs, _ in mounts if fs == "cgroup2"), None)
        if v2 is not None and os.access(v2, os.W_OK):
            self._v2(Path(v2), Path(v2) / own.get("", "/").lstrip("/"), name, memory_mb, max_pids)
        for ctrl in _V1_CONTROLLERS:
            if ctrl in self.totals:
                continue
            point = next((m for m, fs, opts in mounts if fs == "cgroup" and ctrl in opts), None)
            if point is None or not os.access(point, os.W_OK):
                continue
            d = self._make(Path(point) / own.get(ctrl, "/").lstrip("/") / name)
            if d is None:
                continue
            if ctrl == "memory":
                ok = _write(d / "memory.limit_in_bytes", str(memory_mb << 20))
                if (d / "memory.memsw.limit_in_bytes").exists():  # no escape into swap
                    _write(d / "memory.memsw.limit_in_bytes", str(memory_mb << 20))
            else:
                ok = _write(d / "pids.max", str(max_pids))
            if ok:
                self.totals[ctrl] = f"cgroup v1 {d}"
        for total in TOTALS:
            self.totals.setdefault(total, "off")
        off = tuple(self.off())
        if off:  # once per process and combination at warning level: a machine without cgroups says it once
            level = logging.DEBUG if off in _WARNED else logging.WARNING
            _WARNED.add(off)
            log.log(level, "sandbox %s: per-sandbox totals off (per-process limits only): %s", name, ", ".join(off))

    def _make(self, d: Path) -> Path | None:
        try:
            d.mkdir()
        except FileExistsError:  # a leftover of a killed session with the same uid: reuse it when empty
            if (d / "cgroup.procs").read_text().strip():
                return None
        except OSError:
            return None
        self.dirs.append(d)
        return d

    def _v2(self, root: Path, parent: Path, name: str, memory_mb: int, max_pids: int) -> None:
        d = self._make(parent / name)
        if d is None:
            return
        enabled = _controllers(d)
        if not {"memory", "pids"} <= enabled and parent != root and {"memory", "pids"} <= _controllers(root, True):
            # our own group holds processes, so it cannot hand controllers to a child (cgroup v2's
            # no-internal-processes rule): use a group of our own at the top, where the machine enables them
            shared = root / "enpire-sandboxes"
            with contextlib.suppress(OSError):
                shared.mkdir(exist_ok=True)
                (shared / "cgroup.subtree_control").write_text("+memory +pids")
            other = self._make(shared / name) if {"memory", "pids"} <= _controllers(shared, True) else None
            if other is not None:
                self.dirs.remove(d)
                with contextlib.suppress(OSError):
                    d.rmdir()
                d, enabled = other, _controllers(other)
        if "memory" in enabled and _write(d / "memory.max", str(memory_mb << 20)):
            _write(d / "memory.swap.max", "0")
            _write(d / "memory.oom.group", "1")  # an OOM kills the whole sandbox, not one random process
            self.totals["memory"] = f"cgroup v2 {d}"
        if "pids" in enabled and _write(d / "pids.max", str(max_pids)):
            self.totals["pids"] = f"cgroup v2 {d}"
        if (d / "cpu.stat").exists():
            self._cpu_file = d / "cpu.stat"
            self.totals["cpu"] = f"cgroup v2 {d}"
        if (d / "cgroup.kill").exists():
            self._kill_file = d / "cgroup.kill"
            self.totals["kill"] = f"cgroup v2 {d}"

    # -- for the caller ------------------------------------------------------------------------

    def off(self) -> list[str]:
        return [t for t in TOTALS if self.totals.get(t, "off") == "off"]

    def disown(self) -> None:
        """The child could not join: nothing here measures or limits it (the directories are still removed)."""
        self.totals = dict.fromkeys(TOTALS, "off")
        self._cpu_file = self._kill_file = None

    def procs_files(self) -> list[str]:
        """What the child writes `0` into, to join every group before it runs anything else."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def cpu_seconds(self, fallback_pid: int | None = None) -> float | None:
        """CPU used by every process of the sandbox so far; without a cgroup, by `fallback_pid` (its threads,
        and the children it reaped); None where neither can be read.

        Read on every request, so through a descriptor kept open (pread: ~1 us; open+read: ~25 us)."""
        try:
            if self._cpu_file is not None:
                if self._cpu_fd is None:
                    self._cpu_fd = os.open(self._cpu_file, os.O_RDONLY | os.O_CLOEXEC)
                first = os.pread(self._cpu_fd, 128, 0).split(b"\n", 1)[0]  # usage_usec N
                return int(first.split()[1]) * 1e-6
            if fallback_pid is None:
                return None
            if self._cpu_fd is None:
                self._cpu_fd = os.open(f"/proc/{fallback_pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
            ticks = os.pread(self._cpu_fd, 1024, 0).rsplit(b")", 1)[1].split()[11:15]  # utime stime cutime cstime
            return sum(int(t) for t in ticks) / _CLK_TCK
        except (OSError, ValueError, IndexError):
            return None

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going over the memory total."""
        for d in self.dirs:
            for name in ("memory.events", "memory.oom_control"):
                with contextlib.suppress(OSError, ValueError):
                    for line in (d / name).read_text().splitlines():
                        if line.startswith("oom_kill "):
                            return int(line.split()[1])
        return 0

    def pids(self) -> list[int]:
        """Live (not zombie) processes in any of the groups."""
        out: set[int] = set()
        for d in self.dirs:
            with contextlib.suppress(OSError, ValueError):
                out |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
        return sorted(p for p in out if process_alive(p))

    def kill(self, wait_s: float = 2.0, also: set[int] | None = None) -> None:
        """SIGKILL every process in the groups (cgroup.kill where it exists) and wait until they are gone.

        Gone means dead, not only out of `cgroup.procs`: a killed task leaves the list when it
        starts exiting, and on a busy machine it can take a while to get there."""
        seen = set(self.pids()) | (also or set())  # before the kill: they may leave the list before they are dead
        if self._kill_file is not None:
            _write(self._kill_file, "1")
        deadline = time.monotonic() + wait_s
        while (pids := self.pids()) or (seen := {p for p in seen if process_alive(p)}):
            seen |= set(pids)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                log.warning("sandbox cgroup %s: processes %s survive SIGKILL", self.dirs, pids or sorted(seen))
                return
            time.sleep(0.002)

    def remove(self) -> None:
        """Kill what is left and remove the directories (a group with a process in it cannot be removed)."""
        if self._cpu_fd is not None:
            os.close(self._cpu_fd)
            self._cpu_fd = None
        if not self.dirs:
            return
        self.kill()
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.002)
            else:
                log.warning("sandbox cgroup %s could not be removed", d)
        self.dirs = []


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
