"""Signals while the child runs: forwarded to it, never lost, and re-raised at the end.

The supervisor blocks the signals it cares about and takes them with sigtimedwait, which also says
who sent one. Ctrl-C at a terminal reaches the whole foreground process group, the child included,
so a SIGINT sent by the kernel (the terminal) is not forwarded again; one sent by a process
(`kill -INT`) is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

FORWARDED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
_SI_KERNEL = 0x80


def block() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)


def unblock() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)


def wait_forwarding(proc: subprocess.Popen[bytes], poll_s: float = 0.05) -> int:
    """Waits for the child, forwarding the signals the supervisor receives; returns its code."""
    while True:
        info = signal.sigtimedwait(FORWARDED, poll_s)
        if info is not None and not _from_terminal(info):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, info.si_signo)
        code = proc.poll()
        if code is not None:
            return code


def _from_terminal(info: signal.struct_siginfo) -> bool:
    return info.si_signo == signal.SIGINT and info.si_code == _SI_KERNEL


def exit_like(returncode: int) -> int:
    """Ends the supervisor as the child ended: by the same signal, or returns the same code."""
    if returncode < 0:
        signum = -returncode
        if signum not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(signum, signal.SIG_DFL)
        unblock()
        os.kill(os.getpid(), signum)
        # Only a signal whose default is to ignore it gets here.
        return 128 + signum
    return returncode
