"""The sandbox's child side: harden this process, then serve reset/act requests for agent code.

Run by `enpire.policy.sandbox` as `python -I sandbox_child.py CONFIG_JSON` in a new session,
with stdin/stdout as the protocol pipes and a clean, whitelisted environment. It imports
nothing from enpire on purpose: the trusted part of the child should be this one file,
readable top to bottom. Order matters: namespaces first (they need root), then the mount
table, then rlimits, then the irreversible privilege drop, and only then the agent's code.

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

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


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


def _unshare(flags: int) -> bool:
    return _libc.unshare(ctypes.c_int(flags)) == 0


def _enter_namespaces(prot: dict) -> bool:
    """New net + mount + pid namespaces; as a non-root user, inside a new user namespace."""
    base = CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID
    if os.geteuid() == 0 and _unshare(base):
        prot.update(network_namespace=True, mount_namespace=True, pid_namespace=True)
        return True
    uid, gid = os.getuid(), os.getgid()
    if os.geteuid() != 0 and _unshare(CLONE_NEWUSER | base):
        try:
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        except OSError as e:
            prot["notes"].append(f"user namespace maps: {e}")
        prot.update(user_namespace=True, network_namespace=True, mount_namespace=True, pid_namespace=True)
        return True
    if _unshare(CLONE_NEWNET) or (os.geteuid() != 0 and _unshare(CLONE_NEWUSER | CLONE_NEWNET)):
        prot["network_namespace"] = True
    else:
        prot["notes"].append("no network namespace: unshare refused")
    return False


def _mount_points() -> list[tuple[str, str]]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            point = parts[4].encode().decode("unicode_escape")
            out.append((point, parts[5]))
    return out


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _interpreter_paths() -> list[str]:
    """Where the interpreter and its libraries live (they must stay visible inside the sandbox)."""
    paths = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, os.path.dirname(sys.executable))}
    paths |= {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}
    return sorted(p for p in paths if not any(_under(p, q) and p != q for q in paths))


def _lock_filesystem(cfg: dict, prot: dict) -> None:
    """Everything read-only except the private directory; home directories and stores hidden."""
    workdir = cfg["workdir"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount(workdir, workdir, None, MS_BIND)
    if prot.get("pid_namespace"):
        try:
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            prot["private_proc"] = True
        except OSError as e:
            prot["notes"].append(str(e))
    hidden, kept = [], []
    for path in cfg.get("hide_paths", []):
        if not os.path.isdir(path) or _under(workdir, path):
            continue
        # the interpreter itself may live under a hidden directory (pyenv in ~): bind it back
        keep = [k for k in _interpreter_paths() if _under(k, path)]
        fds = [os.open(k, os.O_PATH) for k in keep]
        try:
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=755")
            for k, fd in zip(keep, fds):
                os.makedirs(k, mode=0o755, exist_ok=True)
                _mount(f"/proc/self/fd/{fd}", k, None, MS_BIND | MS_REC)
                kept.append(k)
            _mount(None, path, None, MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
            hidden.append(path)
        except OSError as e:
            prot["notes"].append(str(e))
        finally:
            for fd in fds:
                os.close(fd)
    prot["hidden_paths"], prot["kept_paths"] = hidden, kept
    failed = []
    for point, opts in _mount_points():
        if point == workdir or point in hidden or (point == "/proc" and prot.get("private_proc")):
            continue
        keep = sum(flag for name, flag in (("nosuid", MS_NOSUID), ("nodev", MS_NODEV), ("noexec", MS_NOEXEC))
                   if name in opts.split(","))
        try:
            _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep)
        except OSError:
            failed.append(point)
    prot["readonly_filesystem"] = not failed
    if failed:
        prot["notes"].append(f"could not make read-only: {failed[:5]}")


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
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        prot["uid"] = uid
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0:
        prot["no_new_privs"] = True
    _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)  # after setuid: a credential change clears it


def _seccomp(prot: dict) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import sandbox_seccomp

        why = sandbox_seccomp.install()
    finally:
        sys.path.pop(0)
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
    in_pid_ns = _enter_namespaces(prot) if cfg.get("namespaces", True) else False
    if in_pid_ns:
        # the first child of an unshare(CLONE_NEWPID) caller is pid 1 of the new namespace: when it
        # dies the kernel kills everything else inside, so nothing the agent starts outlives it.
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid:
            os.close(go_r)
            _send(wr, {"pid1": pid})
            os.close(go_w)
            os.close(rd)
            os.close(wr)
            _, status = os.waitpid(pid, 0)
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
        os.close(go_w)
        os.read(go_r, 1)
        os.close(go_r)
    try:
        if prot.get("mount_namespace"):
            _lock_filesystem(cfg, prot)
        os.chdir(cfg["workdir"])
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
