"""The sandbox child's file-system view: what it may write, what it may not see, and a way to its stdlib.

Imported by sandbox_child.py (never from enpire: the trusted part of the child is these few
files). With a mount namespace (`lock_filesystem`):

- a private tmpfs, capped at `disk_mb` and `max_files` inodes, is mounted over the directory
  that holds the private directory (`/tmp`): every other file in it (the other stations'
  sandboxes, test fixtures, anyone's temporary files) disappears, and everything the policy
  can write (its directory, `/dev/shm`) is in that one capped file system;
- a private `/dev` holds only null, zero, full, random, urandom and that `/dev/shm`;
- the directories the caller names (home directories, `./outputs`, the session's store,
  artifacts, control and run directories) are covered by an empty read-only tmpfs, files by
  an empty read-only file (the interpreter is bound back if it lived under one of them);
- every other mount is re-mounted read-only.

Without one (`namespaces=false`, or a machine that refuses), the child still drops to its own
uid, and an interpreter installed under a directory that uid cannot enter (pyenv in a 0700
`/root`) would break every import after the drop: `reach_imports` opens those directories
while still root and points `sys.path` (and loaded packages' `__path__`) at
`/proc/self/fd/N`, which a process may always follow for its own descriptors.
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18

DEV_NODES = ("null", "zero", "full", "random", "urandom")

_libc = ctypes.CDLL(None, use_errno=True)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    if _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _mount_points() -> list[tuple[str, str]]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            out.append((parts[4].encode().decode("unicode_escape"), parts[5]))
    return out


def under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def interpreter_paths() -> list[str]:
    """Where the interpreter and its libraries live (they must stay visible inside the sandbox)."""
    paths = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, os.path.dirname(sys.executable))}
    paths |= {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}
    return sorted(p for p in paths if not any(under(p, q) and p != q for q in paths))


def _private_tmpfs(cfg: dict, source: bytes, prot: dict) -> str:
    """Mount the capped tmpfs, recreate the private directory in it; returns the tmpfs mount point."""
    workdir, uid = cfg["workdir"], cfg.get("uid")
    root = os.path.dirname(workdir)
    if root == "/" or any(under(k, root) for k in interpreter_paths()):
        root = workdir  # never cover the interpreter: cap just the private directory
    inodes, size_kb = int(cfg["max_files"]), int(cfg["disk_mb"]) * 1024
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_kb}k,nr_inodes={inodes},mode=755")
    if root != workdir:
        os.mkdir(workdir, 0o700)
    if uid is not None and os.geteuid() == 0:
        os.chown(workdir, uid, uid)
    os.chmod(workdir, 0o700)
    path = cfg["source_path"]
    with open(path, "wb") as f:
        f.write(source)
    os.chmod(path, 0o444)
    mount(workdir, workdir, None, MS_BIND)  # its own mount point: stays writable when `root` goes read-only
    empty = os.path.join(root if root != workdir else workdir, ".enpire-empty")
    with open(empty, "wb"):
        pass
    os.chmod(empty, 0o444)
    shm = os.path.join(root if root != workdir else workdir, ".enpire-shm")
    os.mkdir(shm)
    os.chmod(shm, 0o1777)
    _private_dev(shm, prot)
    prot["private_tmp"] = root
    prot["disk_total"] = {"disk_mb": int(cfg["disk_mb"]), "max_files": inodes}
    return root


def _private_dev(shm: str, prot: dict) -> None:
    """A /dev with only null, zero, full, random, urandom, and `shm` as /dev/shm (POSIX shared memory:
    private, and inside the same cap). No GPU, kvm, fuse, kmsg, tty or vhost node is left to open:
    a read-only mount does not stop writes to a device node."""
    fds = {n: os.open(f"/dev/{n}", os.O_PATH) for n in DEV_NODES if os.path.exists(f"/dev/{n}")}
    try:
        mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,nr_inodes=64,mode=755")
        for name, fd in fds.items():
            with open(f"/dev/{name}", "w"):
                pass
            mount(f"/proc/self/fd/{fd}", f"/dev/{name}", None, MS_BIND)
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                             ("stderr", "/proc/self/fd/2")):
            os.symlink(target, f"/dev/{name}")
        os.mkdir("/dev/shm", 0o755)
        prot["private_dev"] = sorted(fds)
    except OSError as e:
        prot["notes"].append(f"private /dev: {e}")
    finally:
        for fd in fds.values():
            os.close(fd)
    if os.path.isdir("/dev/shm"):
        try:
            mount(shm, "/dev/shm", None, MS_BIND)
            prot["private_dev_shm"] = True
        except OSError as e:
            prot["notes"].append(str(e))


def _hide(cfg: dict, prot: dict, empty: str) -> list[str]:
    workdir, hidden, kept = cfg["workdir"], [], []
    paths = [p for p in cfg.get("hide_paths", []) if not under(workdir, p)]
    for path in [p for p in paths if os.path.isdir(p)]:
        # the interpreter itself may live under a hidden directory (pyenv in ~): bind it back
        keep = [k for k in interpreter_paths() if under(k, path)]
        fds = [os.open(k, os.O_PATH) for k in keep]
        try:
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=755")
            for k, fd in zip(keep, fds):
                os.makedirs(k, mode=0o755, exist_ok=True)
                mount(f"/proc/self/fd/{fd}", k, None, MS_BIND | MS_REC)
                kept.append(k)
            mount(None, path, None, MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
            hidden.append(path)
        except OSError as e:
            prot["notes"].append(str(e))
        finally:
            for fd in fds:
                os.close(fd)
    for path in [p for p in paths if os.path.isfile(p)]:  # after the directories: some files were under them
        try:
            mount(empty, path, None, MS_BIND)
            mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
            hidden.append(path)
        except OSError as e:
            prot["notes"].append(str(e))
    prot["hidden_paths"], prot["kept_paths"] = hidden, kept
    return hidden


def lock_filesystem(cfg: dict, prot: dict) -> None:
    """Private capped tmpfs for what it writes, session paths hidden, everything else read-only."""
    with open(cfg["source_path"], "rb") as f:  # read before the tmpfs covers it
        source = f.read()
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    if prot.get("pid_namespace"):
        try:
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            prot["private_proc"] = True
        except OSError as e:
            prot["notes"].append(str(e))
    root = _private_tmpfs(cfg, source, prot)
    empty = os.path.join(root, ".enpire-empty")
    hidden = _hide(cfg, prot, empty)
    writable = {cfg["workdir"], "/dev/shm" if prot.get("private_dev_shm") else ""}
    failed = []
    for point, opts in _mount_points():
        if point in writable or point in hidden or (point == "/proc" and prot.get("private_proc")):
            continue
        if prot.get("private_dev") is not None and under(point, "/dev") and not os.path.lexists(point):
            continue  # the machine's /dev/pts, /dev/mqueue...: under the private /dev, out of reach
        keep = sum(flag for name, flag in (("nosuid", MS_NOSUID), ("nodev", MS_NODEV), ("noexec", MS_NOEXEC))
                   if name in opts.split(","))
        try:
            mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep)
        except OSError:
            failed.append(point)
    prot["readonly_filesystem"] = not failed
    if failed:
        prot["notes"].append(f"could not make read-only: {failed[:5]}")


def _enterable_by_others(path: str) -> bool:
    """Whether a uid that owns nothing and has no groups can reach `path` (x for others on every ancestor)."""
    parts = os.path.realpath(path).split("/")
    for i in range(2, len(parts) + 1):
        try:
            if not os.stat("/".join(parts[:i]) or "/").st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def reach_imports(prot: dict) -> None:
    """Before a uid drop without a mount namespace: keep the interpreter's directories importable."""
    moved: dict[str, str] = {}
    for entry in list(sys.path):
        if entry and os.path.isdir(entry) and not _enterable_by_others(entry):
            fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)
            moved[entry] = f"/proc/self/fd/{fd}"
    if not moved:
        return
    sys.path[:] = [moved.get(p, p) for p in sys.path]
    for module in list(sys.modules.values()):
        paths = getattr(module, "__path__", None)
        if isinstance(paths, list):
            for i, p in enumerate(paths):
                for old, new in moved.items():
                    if under(p, old):
                        paths[i] = new + p[len(old):]
    sys.path_importer_cache.clear()
    prot["imports_through_fds"] = sorted(moved)
