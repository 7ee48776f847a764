"""A seccomp filter for the sandbox child: no namespaces, mounts, tracing, kernel-module calls, io_uring,
and no sockets that could reach anything outside the sandbox.

Without it an unprivileged process may still create a user namespace (where it is "root"
over a private copy of the world) and from there mount file systems or reach kernel code
that is rarely exercised. The filter refuses those system calls with EPERM and makes
`clone3` look absent (ENOSYS: glibc falls back to `clone`, whose flags we can inspect).

Sockets: a network namespace cuts IP, but a file-system unix socket (a daemon's
`/run/...sock`, a listener another process left in a visible directory) is reached through
the mount table, not the network, and `AF_VSOCK` leaves the machine's network entirely. So
`socket()` is allowed only for `AF_INET`/`AF_INET6` (and only when the child is in its own
network namespace, where they reach nothing), and `socketpair()` only as a connected
`AF_UNIX` stream pair (a datagram pair could be re-`connect`ed to a path). io_uring is
refused because its rings perform `connect`/`openat` without passing through this filter.
When the child has no IPC namespace, SysV IPC and POSIX message queues are refused too
(their objects would be shared with every other process on the machine).

Built by hand as classic BPF so it needs no libseccomp; only for x86_64 (elsewhere it is
skipped and the sandbox reports that). Imported by sandbox_child.py, so it must not import
anything from enpire either; it is imported before the child drops its privileges.
"""

from __future__ import annotations

import ctypes
import os
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38
LD_ABS, JEQ, JGE, JSET, AND, RET = 0x20, 0x15, 0x35, 0x45, 0x54, 0x06
NAMESPACE_FLAGS = 0x10000000 | 0x20000000 | 0x40000000 | 0x00020000 | 0x04000000 | 0x08000000 | 0x02000000
# x86_64 numbers: unshare setns mount umount2 pivot_root chroot ptrace process_vm_readv/writev kexec_load
# init/finit/delete_module bpf perf_event_open keyctl add_key request_key userfaultfd open_by_handle_at
# reboot swapon swapoff open_tree move_mount fsopen fsconfig fsmount fspick mount_setattr
# io_uring_setup/enter/register pidfd_getfd kexec_file_load
BLOCKED_X86_64 = (272, 308, 165, 166, 155, 161, 101, 310, 311, 246, 175, 313, 176, 321, 298, 250, 248, 249,
                  323, 304, 169, 167, 168, 428, 429, 430, 431, 432, 433, 442, 425, 426, 427, 438, 320)
# shmget shmat shmctl semget semop semctl shmdt msgget msgsnd msgrcv msgctl semtimedop mq_open..mq_getsetattr
SYSV_IPC_X86_64 = (29, 30, 31, 64, 65, 66, 67, 68, 69, 70, 71, 220, 240, 241, 242, 243, 244, 245)
CLONE, CLONE3, SOCKET, SOCKETPAIR = 56, 435, 41, 53
AF_UNIX, AF_INET, AF_INET6, SOCK_STREAM, SOCK_TYPE_MASK = 1, 2, 10, 1, 0xF
ARG0, ARG1 = 16, 24  # offsets of the low 32 bits of args[0], args[1] in struct seccomp_data (little endian)


def _rel(target: int | str, index: int, labels: dict[str, int]) -> int:
    return labels[target] - index - 1 if isinstance(target, str) else target


def _program(allow_inet: bool, allow_sysv_ipc: bool) -> list[tuple[int, int, int, int]]:
    """Instructions (code, jt, jf, k), jumps resolved from labels."""
    blocked = BLOCKED_X86_64 + (() if allow_sysv_ipc else SYSV_IPC_X86_64)
    prog: list[tuple] = [
        (LD_ABS, 0, 0, 4), (JEQ, "arch_ok", "deny", AUDIT_ARCH_X86_64), ("arch_ok",),
        (LD_ABS, 0, 0, 0), (JGE, "deny", 0, 0x40000000),  # the x32 ABI: refuse it entirely
    ]
    prog += [(JEQ, "deny", 0, nr) for nr in blocked]
    prog += [(JEQ, "enosys", 0, CLONE3), (JEQ, "clone", 0, CLONE), (JEQ, "socket", 0, SOCKET),
             (JEQ, "socketpair", 0, SOCKETPAIR), (RET, 0, 0, RET_ALLOW),
             ("clone",), (LD_ABS, 0, 0, ARG0), (JSET, "deny", 0, NAMESPACE_FLAGS), (RET, 0, 0, RET_ALLOW),
             ("socket",), (LD_ABS, 0, 0, ARG0)]
    if allow_inet:
        prog += [(JEQ, "allow", 0, AF_INET), (JEQ, "allow", 0, AF_INET6)]
    prog += [(RET, 0, 0, RET_ERRNO | EPERM),
             ("socketpair",), (LD_ABS, 0, 0, ARG0), (JEQ, 0, "deny", AF_UNIX), (LD_ABS, 0, 0, ARG1),
             (AND, 0, 0, SOCK_TYPE_MASK), (JEQ, "allow", "deny", SOCK_STREAM),
             ("allow",), (RET, 0, 0, RET_ALLOW),
             ("deny",), (RET, 0, 0, RET_ERRNO | EPERM), ("enosys",), (RET, 0, 0, RET_ERRNO | ENOSYS)]
    labels, out, index = {}, [], 0
    for ins in prog:
        if len(ins) == 1:
            labels[ins[0]] = index
        else:
            index += 1
    index = 0
    for ins in prog:
        if len(ins) == 1:
            continue
        code, jt, jf, k = ins
        out.append((code, _rel(jt, index, labels), _rel(jf, index, labels), k))
        index += 1
    return out


def install(allow_inet: bool = True, allow_sysv_ipc: bool = True) -> str | None:
    """Install the filter on this process (inherited by its children); None on success, else why not.

    allow_inet: the child has a network namespace of its own (IP sockets reach nothing outside).
    allow_sysv_ipc: the child has an IPC namespace of its own.
    """
    machine = os.uname().machine
    if machine not in ("x86_64", "AMD64"):
        return f"seccomp filter not built for {machine}"
    prog = _program(allow_inet, allow_sysv_ipc)
    buf = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *ins) for ins in prog))

    class SockFprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))

    fprog = SockFprog(len(prog), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return f"seccomp refused: errno {ctypes.get_errno()}"
    return None
