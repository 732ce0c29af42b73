"""Host CPU, memory, I/O and context switches of the run's process tree, sampled with psutil.

The tree is the main process (the context's pid), its workers (the Python processes below it:
DataLoader workers; multiprocessing's helper processes excepted) and its other descendants. CPU
shares are relative to the cores the run may use: its CPU affinity, capped by its cgroup's CPU
quota. Points go into a `BoundedSeries`, so memory stays flat however long the run is.

What each read costs decides how often it is made (costs measured on a 2-core VM):

- every sample: CPU and RSS of each process (one read of /proc/<pid>/stat on Linux), the host's
  available memory, and the cgroup's memory use when it has a limit (OOM danger is sudden). A
  whole sample of a main process and 2 workers costs about 0.15 ms warm, 0.4 ms cold;
- at most once a second (`DETAIL_INTERVAL_S`): I/O bytes, context switches of every thread (one
  file per thread: /proc/<pid>/status counts only the first thread), swap activity, /dev/shm use;
- the pid list of the tree, on a `Cadence`: every sample unless listing the machine's processes
  costs more than 0.3% of a core (psutil's `children(recursive=True)` instead reads every
  process of the machine each time: 2 ms for 100);
- USS (`memory_full_info`, which walks the page tables: 2 to 10 ms for a torch process and its
  workers) on a `Cadence`: at most every 2 s and at most 0.1% of a core.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfscope.collectors.base import CollectorContext, CollectorResult
from perfscope.collectors.cgroup import PROC, CgroupLimits, memory_used_bytes, read_limits
from perfscope.collectors.series import MAX_POINTS, BoundedSeries, Column

DEFAULT_INTERVAL_S = 0.2
DETAIL_INTERVAL_S = 1.0
USS_MIN_INTERVAL_S = 2.0
SLOW_BUDGET_FRAC = 0.001  # an expensive read may cost at most this share of one core
TREE_BUDGET_FRAC = 0.003  # listing the machine's pids (finds new workers): every sample here
SLOW_MAX_INTERVAL_S = 60.0
MB = 2**20
SHM = Path("/dev/shm")
KINDS = ("main", "worker", "other")
# Python processes that multiprocessing starts for itself: not workers.
MP_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")
PROCFS = os.path.exists("/proc/self/stat") and os.path.isdir("/proc/self/task")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if PROCFS else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if PROCFS else 4096
_CTX_SWITCHES = re.compile(rb"ctxt_switches:\t(\d+)")

COLUMNS = (
    Column("ts", "last", 4),
    Column("cpu_frac", "mean", 4),
    Column("rss_mb", "max", 2),
    Column("avail_mb", "min", 1),
    Column("cpu_main_frac", "mean", 4),
    Column("cpu_workers_frac", "mean", 4),
    Column("workers", "max", 0),
    Column("rss_main_mb", "max", 2),
    Column("rss_workers_mb", "max", 2),
    Column("uss_main_mb", "max", 2),
    Column("uss_workers_mb", "max", 2),
    Column("ctx_switches_per_s", "mean", 1),
    Column("ctx_invol_per_s", "mean", 1),
    Column("io_read_mb_per_s", "mean", 3),
    Column("io_write_mb_per_s", "mean", 3),
    Column("swap_in_mb_per_s", "mean", 3),
    Column("swap_out_mb_per_s", "mean", 3),
    Column("cgroup_mem_mb", "max", 2),
    Column("shm_used_mb", "max", 2),
)


def usable_cores(pid: int = 0) -> int:
    """The cores process `pid` (0: this one) may run on (its CPU affinity), not the machine's."""
    try:
        return len(os.sched_getaffinity(pid))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cores_for(affinity: int, quota: float | None) -> float:
    """The cores CPU shares are relative to: the affinity, capped by a cgroup CPU quota."""
    return min(float(affinity), quota) if quota else float(affinity)


def shm_usage(path: Path = SHM) -> tuple[float, float] | None:
    """Size and free space of /dev/shm in MiB (DataLoader workers pass batches through it)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_blocks * st.f_frsize / MB, st.f_bavail * st.f_frsize / MB


class Cadence:
    """When a read is next due: at most every `min_interval_s`, and rarely enough that it costs
    at most `budget_frac` of one core (the last read's cost decides the next interval)."""

    def __init__(
        self,
        min_interval_s: float,
        budget_frac: float = SLOW_BUDGET_FRAC,
        max_interval_s: float = SLOW_MAX_INTERVAL_S,
    ) -> None:
        self.min_interval_s = min_interval_s
        self.budget_frac = budget_frac
        self.max_interval_s = max_interval_s
        self.interval_s = min_interval_s
        self.last_t: float | None = None

    def due(self, now: float) -> bool:
        return self.last_t is None or now - self.last_t >= self.interval_s

    def done(self, now: float, cost_s: float) -> None:
        wanted = cost_s / self.budget_frac
        self.interval_s = min(max(wanted, self.min_interval_s), self.max_interval_s)
        self.last_t = now


class ProcessTree:
    """The pids of a root process and its descendants.

    Each pid's parent is read once, when the pid first appears; a call lists the machine's pids
    and, when the list has not changed since the last call, reads nothing else.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self._names: set[str] = set()
        self._parent: dict[int, int] = {}
        self._members: list[int] = []

    def pids(self, names: set[str] | None = None) -> list[int]:
        """The tree's pids; `names` is the listing of /proc when the caller already made it."""
        names = _pid_names() if names is None else names
        if names == self._names:
            return self._members
        current = {int(name) for name in names if name.isdigit()}
        for pid in self._parent.keys() - current:
            del self._parent[pid]
        for pid in current - self._parent.keys():
            self._parent[pid] = _parent_pid(pid)
        self._names = names
        self._members = self._descendants()
        return self._members

    def _descendants(self) -> list[int]:
        if self.root not in self._parent:
            return []
        children: dict[int, list[int]] = defaultdict(list)
        for pid, ppid in self._parent.items():
            children[ppid].append(pid)
        found, stack = [], [self.root]
        seen = set(stack)
        while stack:
            pid = stack.pop()
            found.append(pid)
            for child in children.get(pid, ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return found


@dataclass
class _Proc:
    """One process of the tree and its counters at the last read (zero when first seen, so all
    that a process born between two reads did is counted)."""

    handle: Any  # psutil.Process
    kind: str  # main | worker | other
    cpu_s: float = 0.0
    io: tuple[int, int] | None = (0, 0)  # None: not readable for this process
    threads: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass
class _Tally:
    cpu_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    rss: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    count: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))


class HostCollector:
    """Samples CPU, memory, switches and I/O of a process tree on a thread of its own.

    `prepare()` then `sample()` drive it without the thread (tests use a fake clock).
    """

    name = "host"

    def __init__(
        self,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock=time.perf_counter,  # noqa: ANN001 - any () -> float
        max_points: int = MAX_POINTS,
        proc: Path = PROC,
    ) -> None:
        self.interval_s = interval_s
        self._proc_root = proc  # where /proc/<pid>/cgroup and mountinfo are read (tests: fixtures)
        self._clock = clock
        self._origin = 0.0  # sample times are seconds since the run's start, like steps
        self._series = BoundedSeries(COLUMNS, max_points)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._procs: dict[int, _Proc] = {}
        self._affinity = usable_cores()
        self._limits = CgroupLimits()
        self._cores = float(self._affinity)
        self._shm: tuple[float, float] | None = None
        self._tree_cadence = Cadence(0.0, TREE_BUDGET_FRAC)
        self._detail_cadence = Cadence(max(DETAIL_INTERVAL_S, interval_s))
        self._uss_cadence = Cadence(max(USS_MIN_INTERVAL_S, interval_s))
        self._uss_on = True
        self._members: list[int] = []
        self._last_t: float | None = None
        self._last_swap: tuple[int, int] | None = None
        self._unavailable: dict[str, str] = {}
        self._busy_s = 0.0
        self._error: str | None = None

    def available(self) -> str | None:
        try:
            import psutil  # noqa: F401
        except ImportError:
            return "psutil is not installed (pip install psutil)"
        return None

    def start(self, ctx: CollectorContext) -> None:
        self.prepare(ctx)
        self._thread = threading.Thread(target=self._loop, name="perfscope-host", daemon=True)
        self._thread.start()

    def prepare(self, ctx: CollectorContext) -> None:
        """Reads the static facts and sets up the tree; `sample()` may be called from here on."""
        import psutil

        self._origin = ctx.origin
        self._root = psutil.Process(ctx.pid)
        self._tree = ProcessTree(ctx.pid)
        self._affinity = usable_cores(ctx.pid)
        self._limits = read_limits(ctx.pid, self._proc_root)
        self._cores = cores_for(self._affinity, self._limits.cpu_quota_cores)
        self._shm = shm_usage()

    def stop(self) -> CollectorResult:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return self.result()

    def result(self) -> CollectorResult:
        """What was measured so far, as the record's `collectors.host` and `samples.host`."""
        if self._error is not None and not self._series.appended:
            return CollectorResult(status="failed", reason=self._error)
        columns = self._series.to_dict()
        samples = {k: v for k, v in columns.items() if any(x is not None for x in v)}
        return CollectorResult(
            status="ok",
            interval_s=self.interval_s,
            overhead_s=self._busy_s,
            samples=samples or None,
            extra=self._facts(),
        )

    def _facts(self) -> dict[str, Any]:
        limit = self._limits.memory_limit_bytes
        facts: dict[str, Any] = {
            "cores": int(self._cores) if self._cores.is_integer() else round(self._cores, 2),
            "cores_affinity": self._affinity,
            "cpu_quota_cores": self._limits.cpu_quota_cores,
            "cgroup_version": self._limits.version,
            "cgroup_mem_limit_mb": round(limit / MB, 1) if limit is not None else None,
            "shm_total_mb": round(self._shm[0], 1) if self._shm else None,
            "shm_free_mb": round(self._shm[1], 1) if self._shm else None,
            "sample_stride": self._series.stride,
            "uss_interval_s": round(self._uss_cadence.interval_s, 2) if self._uss_on else None,
        }
        if self._unavailable:
            facts["unavailable"] = dict(self._unavailable)
        return facts

    def _loop(self) -> None:
        self._timed_sample()  # the baselines, at once: the first interval is then measured
        while not self._stop.wait(self.interval_s):
            self._timed_sample()

    def _timed_sample(self) -> None:
        started = time.thread_time()
        try:
            self.sample()
        except Exception as exc:  # a sampler must never take the run down
            self._error = f"{type(exc).__name__}: {exc}"
        self._busy_s += time.thread_time() - started

    def sample(self) -> bool:
        """Reads the tree once and appends a point (the first call only sets the baselines).

        Returns False when the tree is gone.
        """
        now = self._clock()
        tally = self._read_tree(now)
        if not self._procs:
            return False
        dt = now - self._last_t if self._last_t is not None else 0.0
        self._last_t = now
        detail = self._read_detail(now)
        if dt <= 0:  # priming: counters read, nothing to divide by yet
            return True
        point = self._point(now, dt, tally)
        point.update(detail)
        point.update(self._read_uss(now))
        point["avail_mb"] = _available_bytes() / MB
        point["cgroup_mem_mb"] = self._cgroup_mb()
        self._series.append(point)
        return True

    def _read_tree(self, now: float) -> _Tally:
        """CPU seconds and RSS of each process since the last sample, by kind."""
        if self._tree_cadence.due(now):
            started = time.thread_time()
            names = _pid_names()  # the steady cost; reading new pids' parents is once per pid
            self._tree_cadence.done(now, time.thread_time() - started)
            self._members = self._tree.pids(names)
        tally = _Tally()
        alive: dict[int, _Proc] = {}
        for pid in self._members:
            proc = self._procs.get(pid) or self._adopt(pid)
            usage = _cpu_rss(proc.handle) if proc is not None else None
            if proc is None or usage is None:
                continue
            tally.cpu_s[proc.kind] += max(usage[0] - proc.cpu_s, 0.0)
            tally.rss[proc.kind] += usage[1]
            tally.count[proc.kind] += 1
            proc.cpu_s = usage[0]
            alive[pid] = proc
        self._members = list(alive)  # the gone stay out until the next listing
        self._procs = alive
        return tally

    def _adopt(self, pid: int) -> _Proc | None:
        import psutil

        try:
            handle = self._root if pid == self._root.pid else psutil.Process(pid)
        except psutil.Error:
            return None
        return _Proc(handle, "main" if pid == self._root.pid else _kind(handle, self._root))

    def _point(self, now: float, dt: float, tally: _Tally) -> dict[str, float | None]:
        share = 1.0 / (dt * self._cores)
        has_main = tally.count["main"] > 0
        return {
            "ts": now - self._origin,
            "cpu_frac": sum(tally.cpu_s.values()) * share,
            "rss_mb": sum(tally.rss.values()) / MB,
            "cpu_main_frac": tally.cpu_s["main"] * share if has_main else None,
            "cpu_workers_frac": tally.cpu_s["worker"] * share,
            "workers": tally.count["worker"],
            "rss_main_mb": tally.rss["main"] / MB if has_main else None,
            "rss_workers_mb": tally.rss["worker"] / MB,
        }

    def _read_detail(self, now: float) -> dict[str, float | None]:
        """I/O, context switches, swap and /dev/shm, as rates since the last detail read."""
        cadence = self._detail_cadence
        if not cadence.due(now):
            return {}
        started = time.thread_time()
        io = self._io_bytes()
        switches = self._switches()
        swap, last_swap = _swap_bytes(), self._last_swap
        self._last_swap = swap
        last = cadence.last_t
        cadence.done(now, time.thread_time() - started)
        if last is None or now <= last:
            return {}
        per_s = 1.0 / (now - last)
        detail: dict[str, float | None] = {
            "ctx_switches_per_s": sum(switches) * per_s,
            "ctx_invol_per_s": switches[1] * per_s,
            "shm_used_mb": _shm_used_mb(),
        }
        if io is not None:
            detail["io_read_mb_per_s"] = io[0] / MB * per_s
            detail["io_write_mb_per_s"] = io[1] / MB * per_s
        if swap is not None and last_swap is not None:
            detail["swap_in_mb_per_s"] = max(swap[0] - last_swap[0], 0) / MB * per_s
            detail["swap_out_mb_per_s"] = max(swap[1] - last_swap[1], 0) / MB * per_s
        return detail

    def _io_bytes(self) -> tuple[int, int] | None:
        """Storage bytes read and written by the tree since the last read (None: unreadable)."""
        import psutil

        read = written = 0
        known = False
        for proc in self._procs.values():
            if proc.io is None:
                continue
            try:
                io = proc.handle.io_counters()
            except (psutil.AccessDenied, AttributeError, NotImplementedError) as exc:
                proc.io = None  # never fatal: some systems refuse /proc/<pid>/io
                reason = f"{type(exc).__name__} for pid {proc.handle.pid}"
                self._unavailable.setdefault("io", reason)
                continue
            except psutil.Error:
                continue
            read += max(io.read_bytes - proc.io[0], 0)
            written += max(io.write_bytes - proc.io[1], 0)
            proc.io = (io.read_bytes, io.write_bytes)
            known = True
        return (read, written) if known else None

    def _switches(self) -> tuple[int, int]:
        """Voluntary and involuntary context switches of every thread since the last read."""
        voluntary = involuntary = 0
        for proc in self._procs.values():
            counts = _thread_switches(proc.handle)
            for tid, (vol, invol) in counts.items():
                prev_vol, prev_invol = proc.threads.get(tid, (0, 0))
                voluntary += max(vol - prev_vol, 0)
                involuntary += max(invol - prev_invol, 0)
            proc.threads = counts
        return voluntary, involuntary

    def _read_uss(self, now: float) -> dict[str, float]:
        """Unique memory (USS) of the main process and of the workers, at the cadence's pace."""
        import psutil

        if not self._uss_on or not self._uss_cadence.due(now):
            return {}
        started = time.thread_time()
        uss: dict[str, float] = {}
        for proc in self._procs.values():
            if proc.kind == "other":
                continue
            try:
                value = proc.handle.memory_full_info().uss
            except (psutil.AccessDenied, AttributeError, NotImplementedError) as exc:
                self._uss_on = False
                self._unavailable["uss"] = f"{type(exc).__name__} for pid {proc.handle.pid}"
                return {}
            except psutil.Error:
                continue
            key = "uss_main_mb" if proc.kind == "main" else "uss_workers_mb"
            uss[key] = uss.get(key, 0.0) + value / MB
        self._uss_cadence.done(now, time.thread_time() - started)
        return uss

    def _cgroup_mb(self) -> float | None:
        limits = self._limits
        if limits.memory_dir is None or limits.version is None:
            return None
        used = memory_used_bytes(limits.version, limits.memory_dir)
        return used / MB if used is not None else None


def _kind(handle: Any, root: Any) -> str:
    """`worker` for a Python process (DataLoader workers are forks of the main process, named
    pt_data_worker), `other` for anything else."""
    import psutil

    try:
        name, exe = handle.name().lower(), handle.exe()
        cmdline = " ".join(handle.cmdline())
    except psutil.Error:
        return "other"
    if any(helper in cmdline for helper in MP_HELPERS):
        return "other"
    try:
        root_exe = root.exe()
    except psutil.Error:
        root_exe = None
    python = "python" in name or "python" in os.path.basename(exe).lower()
    same = bool(exe) and exe == root_exe
    return "worker" if python or same or name.startswith("pt_data_worker") else "other"


def _cpu_rss(handle: Any) -> tuple[float, int] | None:
    """CPU seconds (user + system) and RSS bytes of a process; None when it is gone."""
    import psutil

    if PROCFS:  # one read instead of psutil's two (stat and statm)
        try:
            with open(f"/proc/{handle.pid}/stat", "rb") as f:
                data = f.read()
            fields = data[data.rfind(b")") + 2 :].split()
            return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[21]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            return None
    try:
        with handle.oneshot():
            times, rss = handle.cpu_times(), handle.memory_info().rss
    except psutil.Error:
        return None
    return times.user + times.system, rss


def _parent_pid(pid: int) -> int:
    """The parent of `pid`, -1 when it is gone (one read of /proc/<pid>/stat on Linux)."""
    import psutil

    if PROCFS:
        data = _read_bytes(f"/proc/{pid}/stat")
        try:
            return int(data[data.rfind(b")") + 2 :].split()[1]) if data else -1
        except (IndexError, ValueError):
            return -1
    try:
        return psutil.Process(pid).ppid()
    except psutil.Error:
        return -1


def _pid_names() -> set[str]:
    """The names in /proc (pids and a few others); psutil's pid list where there is no /proc."""
    if PROCFS:
        try:
            return set(os.listdir("/proc"))
        except OSError:
            pass
    import psutil

    return {str(pid) for pid in psutil.pids()}


def _thread_switches(handle: Any) -> dict[int, tuple[int, int]]:
    """(voluntary, involuntary) switches of each thread: /proc/<pid>/status counts only the
    process's first thread, so every /proc/<pid>/task/<tid>/status is read."""
    import psutil

    if not PROCFS:
        try:
            counts = handle.num_ctx_switches()
        except (psutil.Error, NotImplementedError):
            return {}
        return {handle.pid: (counts.voluntary, counts.involuntary)}
    task_dir = f"/proc/{handle.pid}/task"
    found: dict[int, tuple[int, int]] = {}
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return found
    for tid in tids:
        data = _read_bytes(f"{task_dir}/{tid}/status")
        counts = _CTX_SWITCHES.findall(data) if data else []
        if len(counts) == 2:
            found[int(tid)] = (int(counts[0]), int(counts[1]))
    return found


def _swap_bytes() -> tuple[int, int] | None:
    """Bytes swapped in and out since boot (from /proc/vmstat: psutil also reads /proc/meminfo)."""
    data = _read_bytes("/proc/vmstat") if PROCFS else None
    if data is not None:
        pages_in, pages_out = _counter(data, b"pswpin"), _counter(data, b"pswpout")
        if pages_in is not None and pages_out is not None:
            return pages_in * PAGE_SIZE, pages_out * PAGE_SIZE
    import psutil

    try:
        swap = psutil.swap_memory()
    except (OSError, RuntimeError, psutil.Error):
        return None
    return swap.sin, swap.sout


def _available_bytes() -> int:
    """Memory available on the host (MemAvailable, which psutil's `available` reports)."""
    data = _read_bytes("/proc/meminfo") if PROCFS else None
    kib = _counter(data, b"MemAvailable:") if data is not None else None
    if kib is not None:
        return kib * 1024
    import psutil

    return psutil.virtual_memory().available


def _shm_used_mb() -> float | None:
    usage = shm_usage()
    return usage[0] - usage[1] if usage else None


def _read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _counter(data: bytes, key: bytes) -> int | None:
    """The number after `key` at the start of a line of a /proc file."""
    at = 0 if data.startswith(key) else data.find(b"\n" + key)
    if at < 0:
        return None
    end = data.find(b"\n", at + 1)
    fields = data[at : end if end >= 0 else len(data)].split()
    try:
        return int(fields[1])
    except (IndexError, ValueError):
        return None
