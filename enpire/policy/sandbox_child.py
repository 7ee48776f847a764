"""The sandbox's child side: harden a process, then serve reset/act requests for agent code.

Run by `enpire.policy.sandbox` as `python -I sandbox_child.py CONFIG_JSON` in a new session,
with stdin/stdout as the protocol pipes, stderr an unlinked file only the parent holds, and a
clean, whitelisted environment. It imports nothing from enpire on purpose: the trusted part
of the child is this file and its siblings (sandbox_fs.py: the file-system view,
sandbox_seccomp.py: the system-call filter, sandbox_supervisor.py), readable top to bottom.

Two processes. The first, the supervisor (sandbox_supervisor.py), creates the pid namespace,
forks the second, the *policy process* (pid 1 of that namespace), moves it into the sandbox's
cgroups and then only waits, for it or for the station's death (then it kills the whole
sandbox and removes what it left). The policy process sets a parent-death signal (the
supervisor is single-threaded, so this is a process's death, not a thread's), then: network,
mount and IPC namespaces (they need root), the file-system view, modules imported while
still privileged, the wait for the cgroups (it forks nothing before), the irreversible
privilege drop, rlimits, seccomp, and only then the agent's code.

Each protection is attempted on its own and reported in the hello message, so a machine
that cannot create namespaces still runs code policies with rlimits, a private directory
and the parent's deadlines, and says so.

Wire format both ways: 4-byte big-endian length, then a UTF-8 JSON object.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import struct
import sys
import traceback
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sandbox_fs  # noqa: E402 - siblings, loaded from this file's directory while it is still readable
import sandbox_seccomp  # noqa: E402
import sandbox_supervisor  # noqa: E402

sys.path.pop(0)

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x8000000, 0x10000000, 0x20000000, \
    0x40000000
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38

_libc = ctypes.CDLL(None, use_errno=True)


def _send(fd: int, msg: dict) -> None:
    body = json.dumps(msg).encode()
    data = struct.pack(">I", len(body)) + body
    while data:
        data = data[os.write(fd, data):]


def _recv(fd: int) -> dict | None:
    def exactly(n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    head = exactly(4)
    if head is None:
        return None
    body = exactly(struct.unpack(">I", head)[0])
    return None if body is None else json.loads(body)


def _read_all(fd: int) -> bytes:
    out = b""
    while chunk := os.read(fd, 4096):
        out += chunk
    os.close(fd)
    return out


def _unshare(flags: int) -> bool:
    return _libc.unshare(ctypes.c_int(flags)) == 0


# -- the pid namespace (made by the supervisor, for its child) ------------------------------------

def _new_pid_namespace(prot: dict) -> bool:
    """A pid namespace for the policy process; as a non-root user, inside a new user namespace."""
    if os.geteuid() == 0:
        return _unshare(CLONE_NEWPID)
    uid, gid = os.getuid(), os.getgid()
    if not _unshare(CLONE_NEWUSER | CLONE_NEWPID):
        return False
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    except OSError as e:
        prot["notes"].append(f"user namespace maps: {e}")
    prot["user_namespace"] = True
    return True


# -- the policy process -----------------------------------------------------------------------

def _enter_namespaces(prot: dict) -> None:
    """New network, mount and IPC namespaces (each on its own where the machine refuses them together)."""
    kinds = {"network_namespace": CLONE_NEWNET, "mount_namespace": CLONE_NEWNS, "ipc_namespace": CLONE_NEWIPC}
    if _unshare(sum(kinds.values())):
        prot.update(dict.fromkeys(kinds, True))
        return
    for name, flag in kinds.items():
        prot[name] = _unshare(flag)
        if not prot[name]:
            prot["notes"].append(f"no {name.replace('_', ' ')}: unshare refused (errno {ctypes.get_errno()})")


def _limit(cfg: dict, prot: dict) -> None:
    mb = 1024 * 1024
    limits = {
        "RLIMIT_CPU": (cfg["cpu_s"], cfg["cpu_s"] + 1),
        "RLIMIT_AS": (cfg["memory_mb"] * mb,) * 2,
        "RLIMIT_FSIZE": (cfg["file_size_mb"] * mb,) * 2,
        "RLIMIT_NOFILE": (cfg["open_files"],) * 2,
        "RLIMIT_CORE": (0, 0),
    }
    if prot.get("uid") is not None or prot.get("user_namespace"):  # NPROC counts per uid: only with our own uid
        limits["RLIMIT_NPROC"] = (cfg["max_processes"],) * 2
    applied = {}
    for name, (soft, hard) in limits.items():
        try:
            resource.setrlimit(getattr(resource, name), (int(soft), int(hard)))
            applied[name] = int(soft)
        except (ValueError, OSError) as e:
            prot["notes"].append(f"{name}: {e}")
    prot["rlimits"] = applied


def _drop_privileges(cfg: dict, prot: dict) -> None:
    uid = cfg.get("uid")
    if os.geteuid() == 0 and uid is not None and not prot.get("user_namespace"):
        if not prot.get("mount_namespace"):
            sandbox_fs.reach_imports(prot)  # the interpreter may sit under a directory uid cannot enter
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        prot["uid"] = uid
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0:
        prot["no_new_privs"] = True
    _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)  # after setuid: a credential change clears it


def _seccomp(prot: dict) -> None:
    why = sandbox_seccomp.install(allow_inet=bool(prot.get("network_namespace")),
                                  allow_sysv_ipc=bool(prot.get("ipc_namespace")))
    prot["seccomp"] = why is None
    if why:
        prot["notes"].append(why)


def _load_policy(path: str) -> object:
    module = types.ModuleType("policy")
    module.__file__ = path
    with open(path) as f:
        code = compile(f.read(), path, "exec")
    sys.modules["policy"] = module
    exec(code, module.__dict__)
    factory = getattr(module, "make_policy", None) or getattr(module, "Policy", None)
    if factory is None:
        raise AttributeError("the policy source defines neither make_policy() nor a class Policy")
    policy = factory()
    for method in ("reset", "act"):
        if not callable(getattr(policy, method, None)):
            raise AttributeError(f"the policy object has no method {method}()")
    return policy


def _serve(cfg: dict, prot: dict, rd: int, wr: int) -> None:
    import numpy as np

    try:
        policy = _load_policy(cfg["source_path"])
    except BaseException:
        _send(wr, {"ok": False, "error": traceback.format_exc(limit=-8)})
        return
    _send(wr, {"ok": True, "protections": prot})
    while True:
        req = _recv(rd)
        if req is None or req.get("op") == "close":
            return
        try:
            obs = {k: np.asarray(v, dtype=np.float64) for k, v in req["obs"].items()}
            if req["op"] == "reset":
                fb = req.get("feedback")
                policy.reset(obs, types.SimpleNamespace(**fb) if fb else None)
                reply: dict = {"ok": True}
            else:
                action = policy.act(obs)
                try:
                    action = np.asarray(action, dtype=np.float64).tolist()
                except (TypeError, ValueError):
                    action = repr(action)[:200]
                reply = {"ok": True, "action": action}
        except BaseException:
            reply = {"ok": False, "error": traceback.format_exc(limit=-8)}
        _send(wr, reply)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    rd, wr = os.dup(0), os.dup(1)  # the protocol; agent code's prints go to stderr instead
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    prot: dict = {"notes": [], "clean_env": True, "process_group": True, "private_workdir": cfg["workdir"]}
    parent_fd = sandbox_supervisor.watch_parent(cfg["parent_pid"])
    prot["pid_namespace"] = bool(cfg.get("namespaces", True)) and _new_pid_namespace(prot)
    supervisor = os.getpid()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(go_r)
        _send(wr, {"pid1": pid})
        os.close(rd)
        os.close(wr)
        sandbox_supervisor.start(cfg, pid, parent_fd, go_w)
    os.close(go_w)
    _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if os.getppid() != supervisor and not prot["pid_namespace"]:
        os._exit(70)  # the supervisor died before the death signal was armed
    prot["station_death"] = "pidfd" if parent_fd is not None else "getppid polling"
    try:
        if cfg.get("namespaces", True):
            _enter_namespaces(prot)
        if prot.get("mount_namespace"):
            sandbox_fs.lock_filesystem(cfg, prot)
        os.chdir(cfg["workdir"])
        import numpy  # noqa: F401 - imported while the interpreter's files are certainly readable
        failed = json.loads(_read_all(go_r) or b'["the supervisor died"]')  # in the cgroups before any agent code
        prot["cgroups_joined"] = not failed
        if failed:
            prot["notes"].append(f"could not join cgroups: {failed}")
        _drop_privileges(cfg, prot)
        _limit(cfg, prot)  # after the drop: lowering limits needs no privilege, and NPROC counts the new uid
        _seccomp(prot)
    except BaseException:
        _send(wr, {"ok": False, "error": "sandbox set-up failed:\n" + traceback.format_exc()})
        os._exit(70)
    _serve(cfg, prot, rd, wr)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
