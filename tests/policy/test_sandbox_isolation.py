"""Escape attempts of the second review (issue 17, items 4-9): unix sockets and other ways round the network
namespace, shared IPC objects, limits that were per process instead of per sandbox, sandboxes reading each
other and the session's stores, orphans of a killed station, and the no-namespace fallback. Every attempt
is a real child under the harness's limits and is tallied with the first suite (`sandbox: N escape attempts
stopped of M`)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from enpire.fleet.stations import make_station
from enpire.policy.code import CodePolicy, build_code_policy, code_candidate, code_candidate_from_spec
from enpire.policy.factory import make_policy
from enpire.policy.sandbox import Sandbox, SandboxError, SandboxLimits, SandboxTimeout, pids_of_uid
from enpire.policy.sandbox_paths import session_paths
from enpire.records import TrialRequest
from enpire.spec import load_spec
from tests.policy.sandbox_harness import FAST, OBS, REPO, Result, policy_source, record, run_attempt
from tests.policy.test_code_policy import EXAMPLE
from tests.policy.test_sandbox_escapes import stopped

ROOT = os.geteuid() == 0
NO_NS = replace(FAST, namespaces=False)
SECRET = "enpire-secret-" + uuid.uuid4().hex
needs_root = pytest.mark.skipif(not ROOT, reason="uid drop, cgroups and mounts need root")


def totals() -> dict[str, str]:
    """Where this machine enforces each per-sandbox total ('off' where it cannot)."""
    with Sandbox(policy_source("pass"), FAST) as s:
        return dict(s.stats.protections.get("totals", {}))


def visible_dir() -> Path:
    """A fresh directory the sandbox can see (not under /tmp, which it gets a private copy of)."""
    d = Path(tempfile.mkdtemp(prefix="enpire-test-", dir="/var/tmp" if os.access("/var/tmp", os.W_OK) else None))
    os.chmod(d, 0o755)
    return d


# -- 4. around the network namespace --------------------------------------------------------------


def accepted(server: socket.socket) -> bool:
    """Did anything connect to the host listener `server` (it has a timeout) while the attack ran?"""
    try:
        server.accept()[0].close()
        return True
    except TimeoutError:
        return False

@pytest.mark.parametrize("limits", [FAST, NO_NS], ids=["namespaces", "no-namespaces"])
def test_unix_stream_socket_to_a_host_listener(limits: SandboxLimits) -> None:
    d = visible_dir()
    path = str(d / "host.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o666)
    server.listen(1)
    server.settimeout(0.2)
    try:
        r = run_attempt(f"""
            assert os.path.exists({path!r}), 'the socket is not even visible'
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect({path!r})
            s.sendall(b'pwned')
            return ESCAPED
        """, limits=limits)
        got = accepted(server)
    finally:
        server.close()
        shutil.rmtree(d)
    stopped(f"network: unix stream socket to a host listener ({'ns' if limits.namespaces else 'no ns'})",
            not got and "PermissionError" in r.error, r)


def test_unix_datagram_socket_to_a_host_listener() -> None:
    d = visible_dir()
    path = str(d / "host.dgram")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    os.chmod(path, 0o666)
    server.settimeout(0.2)
    try:
        r = run_attempt(f"""
            errors = []
            try:
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'pwned', {path!r})
            except OSError as e:
                errors.append(repr(e))
            try:  # a connected pair re-pointed at the host socket
                a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
                a.connect({path!r})
                a.send(b'pwned')
            except OSError as e:
                errors.append(repr(e))
            if len(errors) < 2:
                return ESCAPED
            raise PermissionError(' / '.join(errors))
        """)
        try:
            server.recv(64)
            got = True
        except TimeoutError:
            got = False
    finally:
        server.close()
        shutil.rmtree(d)
    stopped("network: unix datagram (sendto, re-connected socketpair) to a host socket",
            not got and "PermissionError" in r.error, r)


def test_abstract_unix_socket_vsock_and_io_uring() -> None:
    name = "\0enpire-test-" + uuid.uuid4().hex
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(name)
    server.listen(1)
    server.settimeout(0.2)
    try:
        r = run_attempt(f"""
            libc = ctypes.CDLL(None, use_errno=True)
            out = []
            for what, attempt in (
                ('abstract', lambda: socket.socket(socket.AF_UNIX).connect({name!r})),
                ('vsock', lambda: socket.socket(40, socket.SOCK_STREAM)),
                ('netlink', lambda: socket.socket(16, socket.SOCK_RAW, 0)),
            ):
                try:
                    attempt()
                    return ESCAPED
                except OSError as e:
                    out.append(f'{{what}}: errno {{e.errno}}')
            params = ctypes.create_string_buffer(120)
            if libc.syscall(425, 8, params) >= 0:  # io_uring_setup: IORING_OP_CONNECT would bypass seccomp
                return ESCAPED
            out.append(f'io_uring: errno {{ctypes.get_errno()}}')
            raise PermissionError(', '.join(out))
        """)
        got = accepted(server)
    finally:
        server.close()
    refused = all(f"{k}: errno 1" in r.error for k in ("abstract", "vsock", "netlink", "io_uring"))
    stopped("network: abstract unix socket, AF_VSOCK, netlink, io_uring_setup", not got and refused, r)


def test_tcp_without_a_network_namespace() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    r = run_attempt(f"socket.create_connection(('127.0.0.1', {port}), timeout=0.3)\nreturn ESCAPED", limits=NO_NS)
    got = accepted(server)
    server.close()
    stopped("network: TCP to the host with namespaces=false (seccomp)", not got and "PermissionError" in r.error, r)


# -- 5. IPC -----------------------------------------------------------------------------------------

SHM = """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    KEY = {key}
"""


def host_shm_keys() -> set[int]:
    with open("/proc/sysvipc/shm") as f:
        return {int(line.split()[0]) for line in list(f)[1:] if line.strip()}


@pytest.mark.parametrize("limits", [FAST, NO_NS], ids=["namespaces", "no-namespaces"])
def test_sysv_shared_memory_does_not_outlive_the_trial(limits: SandboxLimits) -> None:
    key = int(uuid.uuid4().int % 2**30) + 1
    pre = SHM.format(key=key)
    first = run_attempt(f"""
        sid = libc.shmget(KEY, 4096, 0o1000 | 0o666)  # IPC_CREAT
        if sid < 0:
            raise PermissionError(f'shmget errno {{ctypes.get_errno()}}')
        addr = libc.shmat(sid, None, 0)
        ctypes.memmove(addr, {SECRET.encode()!r}, {len(SECRET)})
    """, preamble=pre, limits=limits)
    leaked = key in host_shm_keys()
    second = run_attempt(f"""
        sid = libc.shmget(KEY, 0, 0)
        if sid >= 0:
            addr = libc.shmat(sid, None, 0)
            raise RuntimeError('found=' + ctypes.string_at(addr, {len(SECRET)}).decode(errors='replace'))
        raise LookupError(f'shmget errno {{ctypes.get_errno()}}')
    """, preamble=pre, limits=limits)
    ok = not leaked and SECRET not in second.error and ("LookupError" in second.error)
    if not limits.namespaces:  # no IPC namespace: the calls themselves are refused
        ok = ok and "errno 1" in first.error
    stopped(f"ipc: SysV shared memory kept for the next trial ({'ns' if limits.namespaces else 'no ns'})",
            ok, second)


def test_posix_shared_memory_is_private() -> None:
    name = f"enpire-test-{uuid.uuid4().hex}"
    r = run_attempt(f"""
        seen = os.listdir('/dev/shm')
        open('/dev/shm/{name}', 'w').write({SECRET!r})
        raise RuntimeError('seen=' + repr(seen))
    """)
    on_host = os.path.exists(f"/dev/shm/{name}")
    stopped("ipc: POSIX shared memory in the host's /dev/shm", not on_host and "seen=[]" in r.error, r)


# -- 6. totals, not per-process limits ---------------------------------------------------------------

@needs_root
def test_memory_total_across_forks() -> None:
    if totals().get("memory") == "off":
        pytest.skip("no memory cgroup on this machine (the sandbox says so in protections['totals'])")
    limits = replace(FAST, step_timeout_s=8.0, trial_timeout_s=10.0, cpu_s=10)  # memory_mb=384 in total
    r = run_attempt("""
        import select
        rd, wr = os.pipe()
        kids = []
        for _ in range(4):  # 4 x 250 MiB, each under RLIMIT_AS (384 MiB), together 1000 MiB
            pid = os.fork()
            if pid == 0:
                try:
                    held = b'\\1' * (250 << 20)
                    os.write(wr, b'1')
                    time.sleep(5)
                finally:
                    os._exit(0)
            kids.append(pid)
        got, dead, deadline = 0, set(), time.time() + 5
        while got + len(dead) < 4 and time.time() < deadline:
            if select.select([rd], [], [], 0.05)[0]:
                got += len(os.read(rd, 4))
            dead |= {k for k in kids if k not in dead and os.waitpid(k, os.WNOHANG) != (0, 0)}
        alive = sum(k not in dead and os.waitpid(k, os.WNOHANG) == (0, 0) for k in kids)
        for k in kids:
            try:
                os.kill(k, 9)
            except OSError:
                pass
        if got == 4 and alive == 4:
            return ESCAPED
        raise MemoryError(f'{got} of 4 children held 250 MiB, {alive} still alive')
    """, limits=limits, steps=1)
    stopped("resources: 1000 MiB held across 4 forks (memory_mb=384 total)",
            "MemoryError" in r.error or "memory_mb" in r.error or "signal 9" in r.error, r)


def test_disk_total_across_files_and_dev_shm() -> None:
    r = run_attempt("""
        for i in range(20):  # 20 x 3 MiB: each under RLIMIT_FSIZE (4 MiB), together 60 MiB
            where = 'f' if i % 2 else '/dev/shm/f'
            with open(f'{where}{i}.bin', 'wb') as f:
                f.write(b'\\0' * (3 << 20))
        return ESCAPED
    """)
    stopped("resources: 60 MiB in 3 MiB files and /dev/shm (disk total 8 MiB)", "No space left" in r.error, r)


def test_inode_flood() -> None:
    r = run_attempt("""
        for i in range(20000):
            open(f'n{i}', 'w').close()
        return ESCAPED
    """, limits=replace(FAST, step_timeout_s=3.0, trial_timeout_s=5.0))
    stopped("resources: 20000 empty files (max_files 1024)", "No space left" in r.error, r)


SPIN_THREAD = """
    import threading
    import numpy as np
    def spin():
        a = np.ones((200, 200))
        while True:
            a @ a  # BLAS releases the GIL: act() stays fast while this burns a core
"""
SPIN_FORK = """
    def spin():
        if os.fork() == 0:
            while True:
                pass
"""


@pytest.mark.parametrize("how", ["thread", "process"])
def test_background_cpu_is_charged_to_the_trial(how: str) -> None:
    pre = SPIN_THREAD if how == "thread" else SPIN_FORK
    source = policy_source("pass", preamble=pre).replace(
        "    def reset(self, obs, feedback=None):\n        pass",
        "    def reset(self, obs, feedback=None):\n" + (
            "        threading.Thread(target=spin, daemon=True).start()" if how == "thread" else "        spin()"))
    limits = replace(FAST, trial_timeout_s=1.0)
    policy = CodePolicy(source, limits, action_dim=5, name="escape")
    out, t0, steps = Result(), time.monotonic(), 0
    try:
        policy.reset(OBS)
        while time.monotonic() - t0 < 15.0:  # a station stepping physics between actions
            out.actions.append(policy.act(OBS))
            steps += 1
            time.sleep(0.01)
    except SandboxError as e:
        out.error, out.timed_out = str(e), isinstance(e, SandboxTimeout)
    finally:
        sandbox = policy.last_sandbox
        out.uid = sandbox.uid if sandbox else None
        out.protections = sandbox.stats.protections if sandbox else {}
        background = sandbox.stats.background_s if sandbox else 0.0
        policy.close()
    out.actions = []  # normal actions: what matters is that the trial was stopped
    stopped(f"time: CPU of a background {how} between requests charged to the trial",
            out.timed_out and "compute" in out.error and background >= 0.25, out)


# -- 7. what a sandbox can see ------------------------------------------------------------------------

@pytest.mark.parametrize("limits", [FAST, NO_NS], ids=["namespaces", "no-namespaces"])
def test_other_sandbox_stderr_and_private_dir(limits: SandboxLimits) -> None:
    other = CodePolicy(policy_source("pass", preamble=f"""
        sys.stderr.write({SECRET!r} + '\\n'); sys.stderr.flush()
        open('notes.txt', 'w').write({SECRET!r})
        os.chmod('notes.txt', 0o644)
    """), limits, action_dim=5, name="other")
    try:
        other.reset(OBS)
        assert other.last_sandbox is not None and SECRET in other.last_sandbox._stderr_tail()
        workdir = str(other.last_sandbox.workdir)
        r = run_attempt(f"""
            found = []
            # where sandboxes keep their files: the other's private dir, /dev/shm, and every enpire-* entry of
            # the temp dirs (not the whole of /tmp: a checkout or a venv there would outlast the step deadline)
            bases = ['/dev/shm', {workdir!r}]
            for tmp in ('/tmp', '/var/tmp'):
                try:
                    bases += [os.path.join(tmp, n) for n in os.listdir(tmp) if n.startswith(('enpire', '.enpire'))]
                except OSError:
                    pass
            for base in bases:
                for dirpath, _, files in os.walk(base):
                    for name in files:
                        path = os.path.join(dirpath, name)
                        try:
                            if not stat.S_ISREG(os.lstat(path).st_mode):  # a FIFO would block the read
                                continue
                            text = open(path, errors='replace').read(1 << 16)
                        except OSError:
                            continue
                        if 'enpire-secret-' in text:
                            found.append(text[:200])
            raise RuntimeError('found=' + ' '.join(found))
        """, preamble="import stat", limits=replace(limits, step_timeout_s=5.0, trial_timeout_s=8.0))
    finally:
        other.close()
    stopped(f"isolation: read another sandbox's stderr and files ({'ns' if limits.namespaces else 'no ns'})",
            SECRET not in r.error and "found=" in r.error, r)


@needs_root
def test_device_nodes_of_the_machine() -> None:
    readable = [n for n in ("kmsg", "tty", "kvm", "fuse", "autofs", "vhost-vsock") if os.access(f"/dev/{n}", os.R_OK)]
    r = run_attempt(f"""
        opened = []
        for name in {[*readable, "nvidia0", "nvidiactl"]!r}:
            try:
                os.close(os.open('/dev/' + name, os.O_RDWR))
                opened.append(name)
            except OSError:
                pass
        listing = sorted(os.listdir('/dev'))
        if opened:
            return ESCAPED
        raise RuntimeError('dev=' + repr(listing))
    """)
    allowed = {"null", "zero", "full", "random", "urandom", "shm", "fd", "stdin", "stdout", "stderr"}
    tail = r.error.rsplit("dev=", 1)[-1].splitlines()[0] if "dev=" in r.error else "None"
    listing = set(ast.literal_eval(tail) or ())
    stopped("isolation: open the machine's device nodes (kmsg, tty, kvm, fuse, GPU)",
            bool(listing) and listing <= allowed, r)


@needs_root
def test_session_stores_outside_outputs_are_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    base = visible_dir()
    files = {"store/mlflow.db": SECRET, "store/mlflow.db-wal": SECRET, "arts/1/a.json": SECRET,
             "control/sid/state.json": SECRET, "run/journal.jsonl": SECRET}
    for rel, text in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(text)
    for d in base.rglob("*"):
        os.chmod(d, 0o755 if d.is_dir() else 0o644)
    monkeypatch.setenv("ENPIRE_RUN_DIR", str(base / "run"))
    spec = SimpleNamespace(
        policy=SimpleNamespace(sandbox={k: getattr(FAST, k) for k in ("start_timeout_s", "step_timeout_s",
                                                                       "trial_timeout_s", "memory_mb")},
                               source=None, action_mode="cartesian"),
        tracking=SimpleNamespace(uri=f"sqlite:///{base}/store/mlflow.db", artifact_root=f"file://{base}/arts"),
        resolved={"supervision": {"control_root": str(base / "control")}})
    body = f"""
        found = []
        for rel in {sorted(files)!r}:
            try:
                found.append(rel + ':' + open(os.path.join({str(base)!r}, rel)).read())
            except OSError as e:
                found.append(rel + ':' + type(e).__name__)
        raise RuntimeError('found=' + ' '.join(found) + ' ls=' + repr(os.listdir({str(base)!r})))
    """
    policy = build_code_policy(spec, code_candidate(policy_source(body)))  # type: ignore[arg-type]
    out = Result()
    try:
        policy.reset(OBS)
        out.actions.append(policy.act(OBS))
    except SandboxError as e:
        out.error = str(e)
    finally:
        out.uid = policy.last_sandbox.uid if policy.last_sandbox else None
        out.protections = policy.last_sandbox.stats.protections if policy.last_sandbox else {}
        policy.close()
        shutil.rmtree(base)
    stopped("isolation: read the MLflow store, artifacts, control and run dirs outside ./outputs",
            "found=" in out.error and SECRET not in out.error, out)


def test_session_paths_from_the_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Not an attack: what `session_paths` hides for a few store layouts."""
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("ENPIRE_RUN_DIR", raising=False)
    monkeypatch.setenv("ENPIRE_ESTOP_FLAG", str(tmp_path / "ctl" / "sid" / "estop.flag"))

    def spec(uri: str, arts: str, control: str | None = None) -> SimpleNamespace:
        sup = {"control_root": control} if control else {}
        return SimpleNamespace(tracking=SimpleNamespace(uri=uri, artifact_root=arts), resolved={"supervision": sup})

    default = session_paths(spec("sqlite:///outputs/mlflow.db", "outputs/mlartifacts"), run_dir=tmp_path / "run")
    assert str(REPO / "outputs") in default and str(REPO / "outputs" / "mlflow.db-wal") in default
    assert str(REPO / "outputs" / "control") in default and str(tmp_path / "run") in default
    assert str(tmp_path / "ctl" / "sid") in default
    in_repo = session_paths(spec("sqlite:///mlflow.db", "s3://bucket/x", str(tmp_path / "c")))
    assert str(REPO / "mlflow.db") in in_repo and str(REPO) not in in_repo  # never the working tree itself
    assert str(tmp_path / "c") in in_repo and not any(p.startswith("s3:") for p in in_repo)
    server = session_paths(spec("http://mlflow:5000", f"file://{tmp_path}/arts"))
    assert str(tmp_path / "arts") in server and not any("mlflow:5000" in p for p in server)


# -- 8. orphans of a station that died ---------------------------------------------------------------

STATION = """
import json, sys, time
sys.path.insert(0, {repo!r})
from enpire.policy.sandbox import Sandbox, SandboxLimits
src = '''
import os, signal, time
class Policy:
    def reset(self, obs, feedback=None):
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                time.sleep(60)
            os._exit(0)
        os.wait()
    def act(self, obs):
        return [0.0] * 5
'''
s = Sandbox(src, SandboxLimits(namespaces={ns}))
s.request({{"op": "reset", "obs": {{"x": [0.0]}}}})
time.sleep(0.2)
print(json.dumps({{"uid": s.uid, "pids": s.cgroup.pids(), "cgroups": [str(d) for d in s.cgroup.dirs],
                  "workdir": str(s.workdir), "supervisor": s.proc.pid, "pid1": s.pid1}}), flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(line for line in f if line.startswith("State:")).split()[1] not in ("Z", "X")
    except OSError:
        return False


@needs_root
@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "no-namespaces"])
def test_nothing_outlives_a_killed_station(namespaces: bool) -> None:
    station = subprocess.Popen([sys.executable, "-c", STATION.format(repo=str(REPO), ns=namespaces)],
                               stdout=subprocess.PIPE, cwd=str(REPO))
    try:
        info = json.loads(station.stdout.readline() or "{}")  # type: ignore[union-attr]
    finally:
        station.send_signal(signal.SIGKILL)
        station.wait()
    assert info, "the station did not start its sandbox"
    pids = {*info["pids"], info["supervisor"], info["pid1"]}
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)] + pids_of_uid(info["uid"])
        gone = not left and not any(os.path.exists(d) for d in [*info["cgroups"], info["workdir"]])
        if gone:
            break
        time.sleep(0.05)
    result = Result(uid=info["uid"], error="station SIGKILLed")
    record_ok = gone and len(info["pids"]) >= 2  # pid 1 and the detached grandchild were running
    stopped(f"processes: sandbox tree after its station is SIGKILLed ({'ns' if namespaces else 'no ns'})",
            record_ok, result)


# -- 9. the no-namespace fallback runs real code policies ------------------------------------------

def test_code_policy_runs_with_namespaces_false() -> None:
    r = run_attempt("""
        import platform, statistics, decimal, fractions, json, random
        import numpy.linalg
        v = statistics.mean([1.0, 2.0]) + float(decimal.Decimal('0.5')) + random.Random(0).random() * 0
        assert platform.python_version() and numpy.linalg.norm([3.0, 4.0]) == 5.0 and v == 2.0
    """, limits=NO_NS)
    ok = not r.error and len(r.actions) == 2
    if ROOT:
        ok = ok and bool(r.protections.get("uid")) and r.protections.get("seccomp")
    record("fallback: a code policy importing stdlib + numpy with namespaces=false", ok)
    assert ok, (r.error[-1500:], r.protections)


def test_drawer_example_with_namespaces_false() -> None:
    """The shipped example on a real drawer station, with policy.sandbox.namespaces=false."""
    spec = load_spec(["task=drawer", "policy=code", f"policy.source={EXAMPLE}", "policy.sandbox.namespaces=false"])
    candidate = code_candidate_from_spec(spec)
    station = make_station(spec, 0)
    policy = make_policy(spec, candidate)  # type: ignore[arg-type]
    try:
        rec = station.run_trial(TrialRequest("t", 0, 5004, candidate), policy=policy)  # type: ignore[arg-type]
    finally:
        policy.close()
        station.close()
    assert rec.pass_at_k, (rec.outcome, rec.reason, rec.error)
    assert not policy.protections.get("network_namespace")  # type: ignore[attr-defined]


# -- what is on, per machine ----------------------------------------------------------------------

def test_totals_and_namespaces_reported() -> None:
    """Not an attack: which totals this machine enforces, as the caller can report them."""
    with Sandbox(policy_source("pass"), FAST) as s:
        p = s.stats.protections
        assert set(p["totals"]) == {"memory", "pids", "cpu", "kill", "disk"}
        assert s.totals_off() == [t for t, w in p["totals"].items() if w == "off"]
        assert "totals off:" in s.protection_summary()
        if ROOT:
            assert p.get("ipc_namespace") and p.get("private_tmp") and p["totals"]["disk"] == "tmpfs"
            assert p.get("private_dev") and p.get("private_dev_shm") and p.get("readonly_filesystem")
            assert p.get("station_death") in ("pidfd", "getppid polling")
    with Sandbox(policy_source("pass"), NO_NS) as s:
        assert s.stats.protections["totals"]["disk"] == "off" and "disk" in s.totals_off()
