"""Agent code trying to get out of the sandbox: every attempt is a real child process, and each must
be stopped without touching the session (files hashed before/after, parent and sentinels alive,
no process left behind). The summary line `sandbox: N escape attempts stopped of M` is printed
at the end of the run (tests/policy/conftest.py)."""

from __future__ import annotations

import ast
import hashlib
import os
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.policy.sandbox_harness import FAST, REPO, Result, record, run_attempt

SECRET = "sk-ant-FAKE-" + uuid.uuid4().hex


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stopped(name: str, ok: bool, result: Result) -> None:
    """Tally and assert: not escaped, the check held, nothing of the child still running."""
    ok = ok and not result.escaped and not result.leftover_pids
    record(name, ok)
    assert ok, f"{name} was not stopped: error={result.error[:300]!r} actions={result.actions} " \
               f"leftover={result.leftover_pids} protections={result.protections}"


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fake API key in the parent's environment and a secrets file in a fake home directory."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "anthropic_key").write_text(SECRET)
    os.chmod(home, 0o755)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("HOME", str(home))
    return home


# -- network ---------------------------------------------------------------------------------

def test_network_connect_to_loopback_listener() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    r = run_attempt(f"s = socket.create_connection(('127.0.0.1', {port}), timeout=0.3)\nreturn ESCAPED")
    try:
        conn, _ = server.accept()
        conn.close()
        got_connection = True
    except TimeoutError:
        got_connection = False
    server.close()
    stopped("network: connect to a listener on the host", not got_connection and bool(r.error), r)


def test_network_connect_to_internet() -> None:
    r = run_attempt("s = socket.create_connection(('1.1.1.1', 443), timeout=0.3)\nreturn ESCAPED")
    stopped("network: connect to an internet address", "unreachable" in r.error.lower() or bool(r.error), r)


def test_network_udp_and_dns() -> None:
    r = run_attempt("""
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(b'x' * 64, ('8.8.8.8', 53))
        socket.getaddrinfo('pypi.org', 443)
        return ESCAPED
    """)
    stopped("network: UDP send and DNS lookup", bool(r.error), r)


# -- secrets ---------------------------------------------------------------------------------

def test_secret_from_environment(secret_env: Path) -> None:
    r = run_attempt("raise RuntimeError('env=' + repr(dict(os.environ)))")
    stopped("secrets: read ANTHROPIC_API_KEY from the environment", SECRET not in r.error and "env=" in r.error, r)


def test_secret_from_other_processes_environ(secret_env: Path) -> None:
    r = run_attempt("""
        found = []
        for pid in os.listdir('/proc'):
            try:
                found.append(open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace'))
            except OSError:
                pass
        raise RuntimeError('scan=' + ' '.join(found))
    """)
    stopped("secrets: scan /proc/*/environ", SECRET not in r.error and "scan=" in r.error, r)


def test_secret_from_home_directory(secret_env: Path) -> None:
    path = secret_env / ".config" / "anthropic_key"
    r = run_attempt(f"raise RuntimeError('home=' + open({str(path)!r}).read())")
    stopped("secrets: read a key file in the home directory", SECRET not in r.error and bool(r.error), r)


def test_secret_from_root_home() -> None:
    r = run_attempt("raise RuntimeError('ls=' + repr(sorted(os.listdir('/root'))))")
    tail = r.error.rsplit("RuntimeError: ls=", 1)
    seen = set(ast.literal_eval(tail[1].splitlines()[0])) if len(tail) == 2 else set()
    real = set(os.listdir("/root")) if os.access("/root", os.R_OK) else set()
    stopped("secrets: list /root", bool(r.error) and not (seen & real) - {".pyenv"}, r)


# -- files -----------------------------------------------------------------------------------

def test_write_outside_private_directory() -> None:
    target = Path("/tmp") / f"enpire-escape-{uuid.uuid4().hex}"
    r = run_attempt(f"open({str(target)!r}, 'w').write('pwned')\nreturn ESCAPED")
    stopped("files: write into /tmp outside its directory", not target.exists(), r)


def test_edit_the_verifier() -> None:
    verifier = REPO / "enpire" / "world" / "verifier.py"
    before = sha(verifier)
    r = run_attempt(f"open({str(verifier)!r}, 'a').write('\\nPWNED = True\\n')\nreturn ESCAPED")
    stopped("files: append to the frozen verifier", sha(verifier) == before, r)


def test_edit_a_config_file() -> None:
    done = REPO / "enpire" / "tasks" / "drawer" / "conf" / "done" / "drawer.yaml"
    before = sha(done)
    r = run_attempt(f"""
        p = {str(done)!r}
        os.chmod(p, 0o666)
        open(p, 'w').write('predicate: {{conditions: []}}')
        return ESCAPED
    """)
    stopped("files: rewrite the done criteria config", sha(done) == before, r)


def test_replace_a_config_file_via_rename_and_symlink() -> None:
    safety = REPO / "enpire" / "tasks" / "drawer" / "conf" / "safety" / "drawer.yaml"
    before = sha(safety)
    r = run_attempt(f"""
        os.symlink({str(safety.parent)!r}, 'link')
        open('link/evil.yaml', 'w').write('x')
        os.rename('link/drawer.yaml', 'link/old.yaml')
        return ESCAPED
    """)
    untouched = sha(safety) == before and not (safety.parent / "evil.yaml").exists()
    stopped("files: reach a config through a symlink", untouched, r)


def test_change_the_mlflow_store(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    con = sqlite3.connect(store)
    con.execute("create table runs (run_uuid text, status text)")
    con.execute("insert into runs values ('abc', 'FINISHED')")
    con.commit()
    con.close()
    os.chmod(tmp_path, 0o755)
    os.chmod(store, 0o666)
    before = sha(store)
    r = run_attempt(f"""
        import sqlite3
        c = sqlite3.connect({str(store)!r})
        c.execute("update runs set status='KILLED'")
        c.commit()
        os.remove({str(store)!r})
        return ESCAPED
    """)
    stopped("files: change the MLflow SQLite store", store.exists() and sha(store) == before, r)


def test_fill_the_disk() -> None:
    r = run_attempt("""
        with open('big.bin', 'wb') as f:
            for _ in range(64):
                f.write(b'\\0' * (1 << 20))
        return ESCAPED
    """)
    stopped("resources: write a 64 MiB file (RLIMIT_FSIZE 4 MiB)", "File too large" in r.error, r)


def test_shell_out_to_write_the_repo() -> None:
    target = REPO / f"PWNED-{uuid.uuid4().hex[:8]}"
    r = run_attempt(f"""
        import subprocess
        subprocess.run(['sh', '-c', 'echo pwned > {target}'], check=True, timeout=1)
        return ESCAPED
    """)
    stopped("files: shell out to write into the repository", not target.exists(), r)


# -- processes and resources -------------------------------------------------------------------

def test_fork_bomb() -> None:
    r = run_attempt("""
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
    """)
    stopped("processes: fork bomb", bool(r.error), r)


def test_memory_bomb() -> None:
    r = run_attempt("x = bytearray(8 * 1024 ** 3)\nreturn ESCAPED")
    stopped("resources: allocate 8 GiB", "MemoryError" in r.error, r)


def test_endless_loop_in_act() -> None:
    t0 = time.monotonic()
    r = run_attempt("while True:\n    pass")
    took = time.monotonic() - t0
    stopped("time: endless loop in act()", r.timed_out and took < 5.0, r)


def test_endless_loop_at_import() -> None:
    r = run_attempt("pass", preamble="while True:\n    pass", limits=replace(FAST, start_timeout_s=1.5))
    stopped("time: endless loop at import", r.timed_out, r)


def test_ignore_sigterm_and_spin_in_threads() -> None:
    r = run_attempt("""
        import threading
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for _ in range(4):
            threading.Thread(target=lambda: [None for _ in iter(int, 1)], daemon=True).start()
        while True:
            time.sleep(0.001)
    """)
    stopped("time: ignore SIGTERM while spinning threads", r.timed_out, r)


def test_trial_deadline_cannot_be_extended() -> None:
    # each step stays under the step deadline; together they pass the per-trial allowance
    limits = replace(FAST, step_timeout_s=0.5, trial_timeout_s=1.0)
    r = run_attempt("time.sleep(0.3)", limits=limits, steps=10)
    stopped("time: many slow steps past the trial deadline", r.timed_out and len(r.actions) <= 4, r)


def test_signal_the_parent_and_a_sentinel() -> None:
    sentinel = subprocess.Popen(["sleep", "30"])
    try:
        r = run_attempt(f"""
            for pid in (os.getppid(), {os.getpid()}, {sentinel.pid}):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            os.kill({sentinel.pid}, signal.SIGTERM)
            return ESCAPED
        """)
        time.sleep(0.05)
        alive = sentinel.poll() is None
    finally:
        sentinel.kill()
        sentinel.wait()
    stopped("processes: signal the parent and another process", alive and bool(r.error), r)


def test_detached_process_does_not_outlive_the_trial() -> None:
    r = run_attempt("""
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                time.sleep(30)
            os._exit(0)
        time.sleep(0.1)
    """)
    time.sleep(0.1)
    stopped("processes: detached daemon outliving the trial", r.uid is not None and not r.leftover_pids, r)


def test_ctypes_regain_root() -> None:
    r = run_attempt("""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setuid(0) == 0 or libc.unshare(0x10000000 | 0x40000000) == 0:
            return ESCAPED
        raise PermissionError(f'errno {ctypes.get_errno()}')
    """)
    stopped("ctypes: setuid(0) / new user namespace", "PermissionError" in r.error, r)


def test_ctypes_remount_filesystem_writable() -> None:
    r = run_attempt("""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mount(None, b'/', None, ctypes.c_ulong(32 | 4096), None) == 0:
            return ESCAPED
        raise PermissionError(f'mount errno {ctypes.get_errno()}')
    """)
    stopped("ctypes: remount / read-write", "PermissionError" in r.error, r)


def test_ctypes_ptrace_a_process() -> None:
    sentinel = subprocess.Popen(["sleep", "30"])
    try:
        r = run_attempt(f"""
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.ptrace(16, {sentinel.pid}, None, None) == 0:
                return ESCAPED
            raise PermissionError(f'ptrace errno {{ctypes.get_errno()}}')
        """)
        alive = sentinel.poll() is None
    finally:
        sentinel.kill()
        sentinel.wait()
    stopped("ctypes: ptrace another process", alive and bool(r.error), r)


def test_ctypes_segfault() -> None:
    r = run_attempt("ctypes.string_at(0)")
    stopped("ctypes: crash the interpreter (SIGSEGV)", "signal 11" in r.error or "died" in r.error, r)


def test_raise_own_limits() -> None:
    r = run_attempt("""
        import resource
        resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        return ESCAPED
    """)
    stopped("resources: raise its own rlimits", "ValueError" in r.error or "not allowed" in r.error, r)


def test_exhaust_file_descriptors() -> None:
    r = run_attempt("fds = [open('/dev/null') for _ in range(10000)]\nreturn ESCAPED")
    stopped("resources: open 10000 files", "Too many open files" in r.error, r)


# -- the protocol ----------------------------------------------------------------------------

def test_wrong_shape_action() -> None:
    r = run_attempt("return [1.0, 2.0, 3.0]")
    stopped("actions: wrong shape", "expected 5 numbers" in r.error and not r.actions, r)


def test_non_numeric_action() -> None:
    r = run_attempt("return {'x': 'rm -rf /'}")
    stopped("actions: not numbers", "expected 5 numbers" in r.error, r)


def test_message_flood() -> None:
    r = run_attempt("return [0.0] * 500000")
    stopped("protocol: 500k-number reply (limit 64 KiB)", "limit" in r.error, r)


def test_stdout_spam_cannot_forge_replies() -> None:
    r = run_attempt("""
        import json, struct
        body = json.dumps({'ok': True, 'action': ESCAPED}).encode()
        sys.stdout.write('garbage' * 10000)
        sys.stdout.buffer.write(struct.pack('>I', len(body)) + body)
        sys.stdout.flush()
        os.write(1, struct.pack('>I', len(body)) + body)
    """)
    good = not r.error and len(r.actions) == 2 and np.allclose(r.actions[0], [0.4, 0.0, 0.3, 0.0, 0.0])
    stopped("protocol: forge replies on stdout", good, r)


def test_non_finite_and_huge_actions_reach_the_envelope() -> None:
    # the proxy passes them through unchanged: the station's envelope must see them (tests/world covers it)
    r = run_attempt("return [float('nan'), 1e300, -float('inf'), 0.0, 0.0]")
    passed = len(r.actions) == 2 and np.isnan(r.actions[0][0]) and r.actions[0][1] == 1e300
    stopped("actions: NaN / huge values handed to the envelope unchanged", passed, r)


def test_protections_reported() -> None:
    """Not an attack: the report says which protections are active on this machine."""
    r = run_attempt("pass")
    assert r.protections["clean_env"] and "rlimits" in r.protections
    if os.geteuid() == 0:
        assert r.protections.get("network_namespace") and r.protections.get("readonly_filesystem")
        assert r.protections.get("uid") and r.protections.get("pid_namespace") and r.protections.get("seccomp")


def test_parallel_sandboxes_do_not_interfere() -> None:
    results: list[Result] = []
    threads = [threading.Thread(target=lambda: results.append(run_attempt("pass", steps=20))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(not r.error and len(r.actions) == 20 for r in results)
    assert len({r.uid for r in results}) == 3
