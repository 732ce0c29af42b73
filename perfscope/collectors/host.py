"""Host CPU, memory, I/O and context switches of the run's process tree, sampled with psutil.

The tree is the main process (the context's pid), its workers (the Python processes below it:
DataLoader workers; multiprocessing's helper processes excepted) and its other descendants. Under
torchrun the ranks (RANK in their environment, not in their parent's) count as main processes
with torchrun's own, and their DataLoader workers as workers. CPU shares are relative to the
cores the run may use: its CPU affinity, capped by its cgroup's CPU quota. Points go into a
`BoundedSeries`, so memory stays flat however long the run is.

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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfscope.collectors import procfs
from perfscope.collectors.base import CollectorContext, CollectorResult
from perfscope.collectors.cgroup import PROC, CgroupLimits, memory_used_bytes, read_limits
from perfscope.collectors.procfs import MB, ProcessTree, shm_usage, usable_cores
from perfscope.collectors.series import MAX_POINTS, BoundedSeries, Column

DEFAULT_INTERVAL_S = 0.2
DETAIL_INTERVAL_S = 1.0
USS_MIN_INTERVAL_S = 2.0
SLOW_BUDGET_FRAC = 0.001  # an expensive read may cost at most this share of one core
TREE_BUDGET_FRAC = 0.003  # listing the machine's pids (finds new workers): every sample here
SLOW_MAX_INTERVAL_S = 60.0
KINDS = ("main", "worker", "other")
# Python processes that multiprocessing starts for itself: not workers.
MP_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")

# Each worker's own CPU, in slots by arrival (a slot is reused once its worker is gone, as each
# epoch's new workers replace the last ones): a saturated worker shows beside idle ones.
WORKER_SLOTS = 8
WORKER_COLUMNS = tuple(f"cpu_worker{i}_frac" for i in range(WORKER_SLOTS))

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
    *(Column(name, "mean", 4) for name in WORKER_COLUMNS),
)


def cores_for(affinity: int, quota: float | None) -> float:
    """The cores CPU shares are relative to: the affinity, capped by a cgroup CPU quota."""
    return min(float(affinity), quota) if quota else float(affinity)


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


@dataclass
class _Proc:
    """One process of the tree and its counters at the last read (zero when first seen, so all
    that a process born between two reads did is counted)."""

    handle: Any  # psutil.Process
    kind: str  # main | worker | other
    cpu_s: float = 0.0
    slot: int | None = None  # a worker's column in WORKER_COLUMNS (None past WORKER_SLOTS)
    io: tuple[int, int] | None = (0, 0)  # None: not readable for this process
    threads: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass
class _Tally:
    cpu_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    rss: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    count: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    worker_cpu_s: dict[int, float] = field(default_factory=dict)  # by slot


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
        point["avail_mb"] = procfs.available_bytes() / MB
        point["cgroup_mem_mb"] = self._cgroup_mb()
        self._series.append(point)
        return True

    def _read_tree(self, now: float) -> _Tally:
        """CPU seconds and RSS of each process since the last sample, by kind."""
        if self._tree_cadence.due(now):
            started = time.thread_time()
            names = procfs.pid_names()  # the steady cost; reading new pids' parents is once per pid
            self._tree_cadence.done(now, time.thread_time() - started)
            self._members = self._tree.pids(names)
        tally = _Tally()
        alive: dict[int, _Proc] = {}
        taken = {proc.slot for proc in self._procs.values() if proc.slot is not None}
        for pid in self._members:
            proc = self._procs.get(pid) or self._adopt(pid, taken)
            usage = procfs.cpu_rss(proc.handle) if proc is not None else None
            if proc is None or usage is None:
                continue
            tally.cpu_s[proc.kind] += max(usage[0] - proc.cpu_s, 0.0)
            if proc.slot is not None:
                tally.worker_cpu_s[proc.slot] = max(usage[0] - proc.cpu_s, 0.0)
            tally.rss[proc.kind] += usage[1]
            tally.count[proc.kind] += 1
            proc.cpu_s = usage[0]
            alive[pid] = proc
        self._members = list(alive)  # the gone stay out until the next listing
        self._procs = alive
        return tally

    def _adopt(self, pid: int, taken: set[int]) -> _Proc | None:
        import psutil

        try:
            handle = self._root if pid == self._root.pid else psutil.Process(pid)
        except psutil.Error:
            return None
        kind = "main" if pid == self._root.pid else _kind(handle, self._root)
        slot = None
        if kind == "worker":
            slot = next((i for i in range(WORKER_SLOTS) if i not in taken), None)
            if slot is not None:
                taken.add(slot)
        return _Proc(handle, kind, slot=slot)

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
            **{WORKER_COLUMNS[i]: cpu * share for i, cpu in tally.worker_cpu_s.items()},
        }

    def _read_detail(self, now: float) -> dict[str, float | None]:
        """I/O, context switches, swap and /dev/shm, as rates since the last detail read."""
        cadence = self._detail_cadence
        if not cadence.due(now):
            return {}
        started = time.thread_time()
        io = self._io_bytes()
        switches = self._switches()
        swap, last_swap = procfs.swap_bytes(), self._last_swap
        self._last_swap = swap
        last = cadence.last_t
        cadence.done(now, time.thread_time() - started)
        if last is None or now <= last:
            return {}
        per_s = 1.0 / (now - last)
        detail: dict[str, float | None] = {
            "ctx_switches_per_s": sum(switches) * per_s,
            "ctx_invol_per_s": switches[1] * per_s,
            "shm_used_mb": procfs.shm_used_mb(),
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
            counts = procfs.thread_switches(proc.handle)
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
    if (python or same) and _is_rank(handle):
        return "main"
    return "worker" if python or same or name.startswith("pt_data_worker") else "other"


def _is_rank(handle: Any) -> bool:
    """A distributed rank (torchrun's child): RANK in its environment and not in its parent's.
    A rank's forked DataLoader worker shows its parent's environment, so the parent decides."""
    import psutil

    try:
        if not _has_rank(handle.environ()):
            return False
        parent = handle.parent()
        return parent is None or not _has_rank(parent.environ())
    except psutil.Error:
        return False


def _has_rank(environ: dict[str, str]) -> bool:
    return "RANK" in environ and "WORLD_SIZE" in environ
