"""The jail's seccomp filter: system calls a submission never needs, refused with EPERM.

Namespaces and a non-root host uid are the jail's walls; this filter is the layer behind them,
so that a wall that fails does not leave the kernel's whole surface open. The list follows
Docker's default profile where it matters here: no tracing (``ptrace``,
``process_vm_readv``), no mounts or namespaces (``mount``, ``unshare``, ``setns``; bwrap's
``--disable-userns`` stops ``clone(CLONE_NEWUSER)``), no kernel keyrings, BPF, perf or
``userfaultfd`` (the usual exploit primitives), no modules or kexec, no terminal injection
(``ioctl(TIOCSTI)``), no personality flags that weaken the address-space layout, and no setuid or
setgid bits on any file (``chmod`` and friends with ``S_ISUID``/``S_ISGID``).

The filter is built with libseccomp (through ``pyseccomp``, a ctypes binding of the system's
``libseccomp.so.2``) for the machine's own architecture; other ABIs (32-bit ``int 0x80``, x32)
are killed. Fine-tuning with torch uses none of these calls: the model tier's tests train
inside it. Where libseccomp is missing, :func:`bpf` returns None and the sandbox status says so.
"""

from __future__ import annotations

import errno
import os
import stat
from functools import lru_cache

DENIED = ("ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot",
          "unshare", "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
          "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "open_by_handle_at",
          "name_to_handle_at", "fsopen", "fsmount", "fsconfig", "move_mount", "open_tree", "mount_setattr",
          "swapon", "swapoff", "reboot", "syslog", "acct", "quotactl", "iopl", "ioperm", "lookup_dcookie",
          "vhangup", "io_uring_setup", "io_uring_enter", "io_uring_register")
# personality(2) flags that weaken exploit mitigations (ASLR off, executable data, page zero)
PERSONALITY_FLAGS = (0x0040000, 0x0100000, 0x0200000, 0x0400000, 0x0800000, 0x8000000)
TERMINAL_IOCTLS = (0x5412, 0x541C)  # TIOCSTI (type into the terminal), TIOCLINUX
SETID_BITS = stat.S_ISUID | stat.S_ISGID
# (syscall, index of its mode argument): no setuid/setgid bit is ever set from inside
MODE_ARGS = (("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2), ("open", 2), ("openat", 3),
             ("creat", 1), ("mknod", 1), ("mknodat", 2), ("mkdir", 1), ("mkdirat", 2))


@lru_cache(maxsize=1)
def bpf() -> bytes | None:
    """The compiled filter (a few hundred bytes), or None where libseccomp cannot be loaded.

    Built once per process: it depends only on this machine's architecture and libseccomp.
    """
    try:
        import pyseccomp as sc
    except Exception:  # noqa: BLE001 - no binding, or no libseccomp.so.2 under it
        return None
    try:
        filt = sc.SyscallFilter(sc.ALLOW)
        deny = sc.ERRNO(errno.EPERM)
        for name in DENIED:
            _add(filt, deny, name)
        for flag in PERSONALITY_FLAGS:
            _add(filt, deny, "personality", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        for request in TERMINAL_IOCTLS:
            _add(filt, deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
        for name, index in MODE_ARGS:
            for bit in (stat.S_ISUID, stat.S_ISGID):
                _add(filt, deny, name, sc.Arg(index, sc.MASKED_EQ, bit, bit))
        fd = os.memfd_create("autograder-seccomp-build", 0)
        with os.fdopen(fd, "w+b") as buf:
            filt.export_bpf(buf)
            buf.seek(0)
            return buf.read()
    except Exception:  # noqa: BLE001 - an old libseccomp: no filter rather than no grading
        return None


def _add(filt, action, name: str, *args) -> None:
    """Add one rule; a call this kernel or libseccomp does not know is skipped (nothing to deny)."""
    try:
        filt.add_rule(action, name, *args)
    except (OSError, ValueError, RuntimeError):
        pass


def filter_fd() -> int | None:
    """A fresh readable fd holding the filter, for bwrap's ``--seccomp FD`` (the caller closes it)."""
    program = bpf()
    if program is None:
        return None
    fd = os.memfd_create("autograder-seccomp", 0)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def describe() -> str:
    return "seccomp filter" if bpf() is not None else "no seccomp filter (libseccomp is missing)"
