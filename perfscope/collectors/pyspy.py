"""Python stacks of the run's process tree, sampled from outside by py-spy.

py-spy runs as a separate process (`py-spy record --pid PID --subprocesses --nonblocking`), writes
`pyspy.speedscope.json` into the run directory and its messages into `pyspy.log`, never to the
user's terminal. It reads the program's memory without stopping it (`--nonblocking`: measured here
a loop ran 2-7% slower with it, 12-45% slower with py-spy's default of pausing the process at each
sample). Reading another process's memory is ptrace's permission: where the kernel or a container
refuses it, the collector says how to allow it, and the run goes on without stacks.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from perfscope.collectors.base import CollectorContext, CollectorResult
from perfscope.options import CollectorOptions

SPEEDSCOPE_NAME = "pyspy.speedscope.json"
LOG_NAME = "pyspy.log"
PTRACE_SCOPE = Path("/proc/sys/kernel/yama/ptrace_scope")
INSTALL = "pip install py-spy"
CAP_SYS_PTRACE = 19
PR_SET_PTRACER = 0x59616D61  # Yama: let this pid (and its descendants) read our memory

_POLL_S = 0.1
_LOG_TAIL_BYTES = 64 * 1024
_NOT_PYTHON = ("no python processes found", "failed to find python version", "python interpreter")
_REFUSED = ("permission denied", "operation not permitted", "os error 1)", "os error 13)")
_NO_EXE = "failed to get process executable name"  # another user's process, or a gone one


def find_pyspy() -> str | None:
    """The py-spy executable beside this Python (its venv's bin), else the one on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


class PySpyCollector:
    """Samples Python stacks of a process and its children with py-spy, at options.pyspy_rate.

    Args:
        options: the run's collector options (`pyspy`, `pyspy_rate`).
        binary: the py-spy executable; by default the one `find_pyspy` finds.
        attempts: how many times py-spy is started while the program has no Python interpreter
            it can find yet (a shell script that starts Python later); 1 disables retries.
        grace_s: how long stop() waits at each stage: for py-spy to finish once the program has
            ended, then after SIGINT, then after SIGKILL.
        top: how many functions the record keeps by self and by total samples.
    """

    name = "pyspy"

    def __init__(
        self,
        options: CollectorOptions | None = None,
        *,
        binary: str | None = None,
        attempts: int = 3,
        grace_s: float = 5.0,
        top: int = 40,
    ) -> None:
        self.options = options or CollectorOptions()
        self._binary = binary
        self._attempts = max(1, attempts)
        self._grace_s = grace_s
        self._top = top
        self._ctx: CollectorContext | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._started = 0
        self._stopping = False
        self._cpu_s = 0.0
        self._status: int | None = None
        self._target_alive_at_exit = True
        self._killed = False

    def available(self) -> str | None:
        if not self.options.pyspy:
            return "disabled (--no-pyspy)"
        if not hasattr(os, "posix_spawn"):
            return f"not supported on {sys.platform} (perfscope starts py-spy on POSIX systems)"
        if self._executable() is None:
            where = self._binary or f"beside {sys.executable} or on PATH"
            return f"py-spy is not installed (not found {where}): {INSTALL}"
        return ptrace_refusal(read_ptrace_scope(), privileged())

    def start(self, ctx: CollectorContext) -> None:
        self._ctx = ctx
        for name in (SPEEDSCOPE_NAME, LOG_NAME):
            (ctx.run_dir / name).unlink(missing_ok=True)
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="perfscope-pyspy", daemon=True)
        self._thread.start()

    def stop(self) -> CollectorResult:
        with self._lock:
            self._stopping = True
        assert self._ctx is not None, "stop() before start()"
        if _alive(self._ctx.pid) or not self._done.wait(self._grace_s):
            self._signal(signal.SIGINT)  # py-spy writes its file and exits on SIGINT
            if not self._done.wait(self._grace_s):
                self._killed = self._signal(signal.SIGKILL)
                self._done.wait(self._grace_s)
        if self._thread is not None:
            self._thread.join(self._grace_s)
        if self._ctx.pid == os.getpid():
            allow_tracer(0)
        return self._result(self._ctx.run_dir)

    def command(self, ctx: CollectorContext) -> list[str]:
        """The py-spy command line for a run."""
        return [
            self._executable() or "py-spy",
            "record",
            "--pid",
            str(ctx.pid),
            "--subprocesses",
            "--nonblocking",
            "--rate",
            str(self.options.pyspy_rate),
            "--format",
            "speedscope",
            "-o",
            os.path.abspath(ctx.run_dir / SPEEDSCOPE_NAME),
        ]

    def _executable(self) -> str | None:
        if self._binary is not None:
            found = Path(self._binary)
            return str(found) if found.is_file() and os.access(found, os.X_OK) else None
        return find_pyspy()

    def _spawn(self) -> None:
        assert self._ctx is not None
        argv = self.command(self._ctx)
        log = self._ctx.run_dir / LOG_NAME
        with open(log, "a", encoding="utf-8") as header:
            header.write(f"perfscope: {' '.join(argv)}\n")
        env = {**os.environ, "RUST_BACKTRACE": "0"}
        env.setdefault("RUST_LOG", "warn")  # py-spy says why it could not read a process
        # Its own session: a Ctrl-C at the terminal stops the program, not its profiler, and
        # an empty signal mask (the supervisor blocks the signals it forwards).
        self._pid = os.posix_spawn(
            argv[0],
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ],
            setsid=True,
            setsigmask=(),
            setsigdef=(signal.SIGINT, signal.SIGTERM),
        )
        self._started += 1
        if self._ctx.pid == os.getpid():
            allow_tracer(self._pid)  # py-spy is our child: Yama's ptrace_scope 1 needs this

    def _watch(self) -> None:
        """Reaps py-spy (its CPU time is the collector's cost) and restarts it when it found no
        Python yet while the program still runs."""
        started = time.thread_time()
        try:
            while not self._reap_once():
                time.sleep(_POLL_S)
        finally:
            with self._lock:
                self._cpu_s += time.thread_time() - started
            self._done.set()

    def _reap_once(self) -> bool:
        """Polls py-spy; True when the collector is done (py-spy ended and is not restarted)."""
        assert self._ctx is not None
        with self._lock:
            if self._pid is None:
                return True
            try:
                pid, status, usage = os.wait4(self._pid, os.WNOHANG)
            except ChildProcessError:  # the program reaped it (os.wait(), SIGCHLD ignored)
                pid, status, usage = self._pid, None, None
            if pid == 0:
                return False
            self._pid = None
            if usage is not None:
                self._cpu_s += usage.ru_utime + usage.ru_stime
            self._status = os.waitstatus_to_exitcode(status) if status is not None else None
            self._target_alive_at_exit = _alive(self._ctx.pid)
            if not self._should_retry():
                return True
        time.sleep(0.5)  # the program may still be starting its Python
        with self._lock:
            if self._stopping:
                return True
            self._spawn()
        return False

    def _should_retry(self) -> bool:
        assert self._ctx is not None
        if self._stopping or self._status == 0 or self._started >= self._attempts:
            return False
        log = _tail(self._ctx.run_dir / LOG_NAME)
        return self._target_alive_at_exit and _refusal(log, self._ctx.pid, True) is None

    def _signal(self, signum: int) -> bool:
        with self._lock:
            if self._pid is None:
                return False
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signum)
            return True

    def _result(self, run_dir: Path) -> CollectorResult:
        assert self._ctx is not None
        cost = round(self._cpu_s, 6)
        out = run_dir / SPEEDSCOPE_NAME
        log = _tail(run_dir / LOG_NAME)
        if out.is_file() and out.stat().st_size > 0:
            return self._parse(out, log, cost)
        status, reason = explain_failure(
            log,
            exit_status=self._status,
            target_pid=self._ctx.pid,
            target_alive=self._target_alive_at_exit,
            killed=self._killed,
            ptrace_scope=read_ptrace_scope(),
            is_root=os.geteuid() == 0,
            in_container=in_container(),
        )
        return CollectorResult(status=status, reason=reason, overhead_s=cost, extra=_files(run_dir))

    def _parse(self, out: Path, log: str, cost: float) -> CollectorResult:
        from perfscope.analysis.pyspy import speedscope_table

        try:
            doc = json.loads(out.read_text(encoding="utf-8"))
            table = speedscope_table(doc, self._top, perfscope_root=_perfscope_root())
        except (OSError, ValueError) as exc:
            reason = f"py-spy wrote an unreadable {out.name}: {exc}"
            extra = _files(out.parent)
            return CollectorResult(status="failed", reason=reason, overhead_s=cost, extra=extra)
        note = _cap_profile(out, self.options.trace_max_mb)
        return CollectorResult(
            status="ok",
            interval_s=round(1.0 / self.options.pyspy_rate, 6),
            overhead_s=cost,
            samples=table,
            extra={
                **_files(out.parent),
                "rate_hz": self.options.pyspy_rate,
                **({"speedscope_note": note} if note else {}),
                "nonblocking": True,
                "errors": _sampling_errors(log),
            },
        )


def read_ptrace_scope(path: Path = PTRACE_SCOPE) -> int | None:
    """Yama's kernel.yama.ptrace_scope, or None where there is no Yama or it cannot be read."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def privileged() -> bool:
    """Whether a process this one starts may read any process's memory (root with
    CAP_SYS_PTRACE; capabilities of a non-root user do not survive exec)."""
    if os.geteuid() != 0:
        return False
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    except (OSError, ValueError, IndexError):
        pass
    return True  # root, capabilities unknown (no /proc): assume the usual


def in_container() -> bool:
    """Best guess: inside Docker, containerd, Podman or Kubernetes."""
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return True
    try:
        cgroup = Path("/proc/1/cgroup").read_text()
    except OSError:
        return False
    return any(word in cgroup for word in ("docker", "containerd", "kubepods", "libpod"))


def ptrace_refusal(scope: int | None, is_privileged: bool) -> str | None:
    """Why Yama will refuse py-spy whatever the process tree looks like, else None.

    Scope 1 (only a process's ancestors, or the one it names, may read it) is not refused here:
    the program can name its tracer, and whether it did shows only when py-spy runs.
    """
    if scope is not None and scope >= 3:
        return (
            "ptrace refused: kernel.yama.ptrace_scope is 3, so no process may read another's "
            "memory; it can be lowered only by rebooting with a lower value "
            "(kernel.yama.ptrace_scope=0 in /etc/sysctl.d/)"
        )
    if scope == 2 and not is_privileged:
        return (
            "ptrace refused: kernel.yama.ptrace_scope is 2, so only root with CAP_SYS_PTRACE may "
            "read another process's memory; run perfscope as root (in a container started with "
            "--cap-add SYS_PTRACE), or `sudo sysctl kernel.yama.ptrace_scope=0` on the host"
        )
    return None


def explain_failure(
    log: str,
    *,
    exit_status: int | None,
    target_pid: int,
    target_alive: bool,
    killed: bool = False,
    ptrace_scope: int | None = None,
    is_root: bool = False,
    in_container: bool = False,
) -> tuple[str, str]:
    """Why py-spy produced no profile, and how to fix it, read from its log.

    Returns:
        (status, reason): `unavailable` when the system does not let py-spy read the program
        (ptrace refused), `failed` for anything else; the reason is one line.
    """
    text = log.lower()
    last = _last_error(log)
    refusal = _refusal(log, target_pid, target_alive)
    if refusal is not None:
        remedy = ptrace_remedy(ptrace_scope, is_root, in_container)
        return "unavailable", f"ptrace refused ({refusal}); {remedy}"
    if killed:
        return "failed", f"py-spy did not stop and was killed; it wrote no profile (see {LOG_NAME})"
    if any(s in text for s in _NOT_PYTHON) or _NO_EXE in text:
        if not target_alive:
            return "failed", "the program ended before py-spy could read it (under ~1 s of run)"
        return "failed", f"py-spy found no Python interpreter in the program's processes ({last})"
    if exit_status is None:
        return "failed", f"py-spy wrote no profile (see {LOG_NAME})"
    return "failed", f"py-spy exited with status {exit_status} and wrote no profile ({last})"


def ptrace_remedy(scope: int | None, is_root: bool, container: bool) -> str:
    """How to let py-spy read the program's memory on this machine."""
    ways = []
    if container:
        ways.append(
            "start the container with --cap-add SYS_PTRACE (Kubernetes: securityContext."
            "capabilities.add: [SYS_PTRACE])"
        )
    if scope is not None and scope >= 1:
        ways.append(f"`sudo sysctl kernel.yama.ptrace_scope=0` (it is {scope})")
    if not is_root:
        ways.append("run perfscope as root")
    if not ways:
        ways.append(
            "start the container with --cap-add SYS_PTRACE if this is one, or lift the seccomp "
            "or AppArmor policy that blocks ptrace and process_vm_readv"
        )
    return "to allow it: " + ", or ".join(ways)


def _refusal(log: str, target_pid: int, target_alive: bool) -> str | None:
    """The log line that shows the kernel refused py-spy access to the program, if one does.

    "Failed to get process executable name" means refused only for the program itself while it
    runs: a short-lived child (a shell's `sleep`) gives it too, by ending while py-spy looks.
    """
    for line in log.splitlines():
        text = line.lower()
        if any(s in text for s in _REFUSED):
            return _message(line)
        if _NO_EXE in text and target_alive and f"process {target_pid}:" in text:
            return _message(line)
    return None


def _message(line: str) -> str:
    return line.strip().split("] ", 1)[-1][:300]


def _last_error(log: str) -> str:
    """The most telling line of py-spy's log: its error, else its last warning."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("Error:", "Permission Denied")):
            return line[:300]
    for line in reversed(lines):
        if " WARN " in line and "initialization status" not in line:
            return _message(line)
    return lines[-1][:300] if lines else "no message"


def _sampling_errors(log: str) -> int | None:
    for line in reversed(log.splitlines()):
        if "Samples:" in line and "Errors:" in line:
            with contextlib.suppress(ValueError, IndexError):
                return int(line.rsplit("Errors:", 1)[1].split()[0])
    return None


def _cap_profile(out: Path, max_mb: float) -> str | None:
    """Drops a raw profile bigger than the raw-trace cap (its summary is in the record)."""
    size_mb = out.stat().st_size / 2**20
    if size_mb <= max_mb:
        return None
    out.unlink()
    return f"{out.name} ({size_mb:.0f} MB) was over the {max_mb:.0f} MB cap and was not kept"


def _files(run_dir: Path) -> dict[str, Any]:
    out = run_dir / SPEEDSCOPE_NAME
    return {"speedscope": out.name if out.is_file() else None, "log": LOG_NAME}


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Whether pid runs (a zombie does not)."""
    if pid == os.getpid():
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def allow_tracer(pid: int) -> None:
    """Lets `pid` and its descendants read this process under Yama's ptrace_scope 1 (0: none).

    `perfscope.profile()` names its py-spy child this way. A process started by `perfscope run`
    can name the supervisor (call this with `os.getppid()` between fork and exec: the choice
    survives exec), so that py-spy, the supervisor's child, may read it. Does nothing where
    ptrace_scope is not 1 (nothing to allow, or nothing this can allow).
    """
    if read_ptrace_scope() != 1:
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PTRACER, ctypes.c_ulong(pid), 0, 0, 0)


def _perfscope_root() -> str:
    import perfscope

    return str(Path(perfscope.__file__).resolve().parent)
