"""cgroup v1/v2 reading: fixture trees that mimic /proc and /sys/fs/cgroup, and this machine's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import pytest

from perfscope.collectors.cgroup import (
    UNLIMITED_BYTES,
    cgroup_of,
    memory_used_bytes,
    parse_mountinfo,
    parse_proc_cgroup,
    read_limits,
)

PID = 4242
V1_NO_LIMIT = "9223372036854771712"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_proc(tmp_path: Path, cgroup: str, mounts: list[str]) -> Path:
    """A /proc with `<PID>/cgroup` and `self/mountinfo` (mount points inside tmp_path)."""
    proc = tmp_path / "proc"
    write(proc / str(PID) / "cgroup", cgroup)
    lines = [f"{30 + i} 23 0:{26 + i} {m}" for i, m in enumerate(mounts)]
    lines.insert(0, "22 1 8:1 / / rw,relatime - ext4 /dev/root rw")
    write(proc / "self" / "mountinfo", "\n".join(lines) + "\n")
    return proc


def v2_tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "sys" / "fs" / "cgroup"
    proc = make_proc(tmp_path, "0::/user.slice/job\n", [f"/ {root} rw,nosuid - cgroup2 cgroup2 rw"])
    (root / "user.slice" / "job").mkdir(parents=True)
    return proc, root


def v1_tree(tmp_path: Path, path: str = "/docker/abc", mount_root: str = "/") -> tuple[Path, Path]:
    base = tmp_path / "sys" / "fs" / "cgroup"
    cgroup = f"12:memory:{path}\n4:cpu,cpuacct:{path}\n1:name=systemd:{path}\n0::/\n"
    proc = make_proc(
        tmp_path,
        cgroup,
        [
            f"{mount_root} {base}/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct",
            f"{mount_root} {base}/memory rw,nosuid - cgroup cgroup rw,memory",
            f"/ {base}/unified rw,nosuid - cgroup2 cgroup2 rw",
        ],
    )
    return proc, base


def test_v2_quota_and_limit_are_the_tightest_over_the_ancestors(tmp_path: Path) -> None:
    # GIVEN a v2 job cgroup with 1.5 cores of quota, and a 1 GiB memory limit set by its parent
    proc, root = v2_tree(tmp_path)
    job = root / "user.slice" / "job"
    write(job / "cpu.max", "150000 100000\n")
    write(job / "memory.max", "max\n")
    write(root / "user.slice" / "cpu.max", "max 100000\n")
    write(root / "user.slice" / "memory.max", f"{2**30}\n")
    write(root / "user.slice" / "memory.current", f"{600 * 2**20}\n")
    write(root / "user.slice" / "memory.stat", f"anon 1\ninactive_file {100 * 2**20}\nx 2\n")
    # WHEN the limits of the process are read
    limits = read_limits(PID, proc)
    # THEN the quota is the job's, the limit the parent's, and usage is read where the limit is
    assert limits.version == 2
    assert limits.cpu_quota_cores == 1.5
    assert limits.memory_limit_bytes == 2**30
    assert limits.memory_dir == root / "user.slice"
    assert memory_used_bytes(2, limits.memory_dir) == 500 * 2**20


def test_v2_without_limits(tmp_path: Path) -> None:
    proc, root = v2_tree(tmp_path)
    write(root / "user.slice" / "job" / "cpu.max", "max 100000\n")
    limits = read_limits(PID, proc)
    assert (limits.version, limits.cpu_quota_cores, limits.memory_limit_bytes) == (2, None, None)
    assert limits.memory_dir is None


def test_v1_quota_and_limit(tmp_path: Path) -> None:
    # GIVEN a docker-like v1 cgroup with 2 cores of quota and a 512 MiB limit, hybrid with v2
    proc, base = v1_tree(tmp_path)
    cpu, memory = base / "cpu,cpuacct" / "docker" / "abc", base / "memory" / "docker" / "abc"
    write(cpu / "cpu.cfs_quota_us", "200000\n")
    write(cpu / "cpu.cfs_period_us", "100000\n")
    write(base / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    write(base / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    write(memory / "memory.limit_in_bytes", f"{512 * 2**20}\n")
    write(base / "memory" / "memory.limit_in_bytes", V1_NO_LIMIT + "\n")
    write(memory / "memory.usage_in_bytes", f"{300 * 2**20}\n")
    write(memory / "memory.stat", f"cache 5\ninactive_file 1\ntotal_inactive_file {2**20}\n")
    # WHEN read
    limits = read_limits(PID, proc)
    # THEN the v1 controllers win over the empty v2 hierarchy
    assert limits.version == 1
    assert limits.cpu_quota_cores == 2.0
    assert limits.memory_limit_bytes == 512 * 2**20
    assert limits.memory_dir == memory
    assert memory_used_bytes(1, memory) == 299 * 2**20


def test_v1_unlimited_is_no_limit(tmp_path: Path) -> None:
    proc, base = v1_tree(tmp_path)
    write(base / "memory" / "docker" / "abc" / "memory.limit_in_bytes", V1_NO_LIMIT + "\n")
    write(base / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "-1\n")
    write(base / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    limits = read_limits(PID, proc)
    assert (limits.cpu_quota_cores, limits.memory_limit_bytes) == (None, None)


def test_v1_mount_showing_the_process_cgroup_at_its_root(tmp_path: Path) -> None:
    # GIVEN a container without a cgroup namespace: the mount's root is the container's cgroup
    proc, base = v1_tree(tmp_path, path="/docker/abc", mount_root="/docker/abc")
    write(base / "memory" / "memory.limit_in_bytes", f"{2**30}\n")
    # THEN the cgroup's files are at the mount point itself
    found = cgroup_of(PID, "memory", proc)
    assert found is not None and found.directory == base / "memory"
    assert read_limits(PID, proc).memory_limit_bytes == 2**30


def test_a_cgroup_path_that_does_not_exist_falls_back_to_the_mount(tmp_path: Path) -> None:
    proc, root = v2_tree(tmp_path)
    write(proc / str(PID) / "cgroup", "0::/elsewhere/not/mounted\n")
    found = cgroup_of(PID, "memory", proc)
    assert found is not None and found.directory == root


def test_no_cgroup_files_means_no_limits(tmp_path: Path) -> None:
    limits = read_limits(PID, tmp_path / "no-proc")
    assert (limits.version, limits.cpu_quota_cores, limits.memory_limit_bytes) == (None,) * 3


def test_malformed_files_are_no_limit(tmp_path: Path) -> None:
    proc, root = v2_tree(tmp_path)
    job = root / "user.slice" / "job"
    write(job / "cpu.max", "garbage\n")
    write(job / "memory.max", "lots\n")
    limits = read_limits(PID, proc)
    assert (limits.cpu_quota_cores, limits.memory_limit_bytes) == (None, None)
    assert memory_used_bytes(2, job) is None


def test_parsers() -> None:
    mounts = parse_mountinfo(
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        r"41 31 0:38 /a\040b /mnt/my\040cg rw - cgroup2 cgroup2 rw" + "\n"
        "22 1 8:1 / / rw - ext4 /dev/root rw\n"
        "short line\n"
    )
    assert [(str(m.path), m.root, m.version) for m in mounts] == [
        ("/sys/fs/cgroup/memory", "/", 1),
        ("/mnt/my cg", "/a b", 2),
    ]
    assert "memory" in mounts[0].controllers
    paths = parse_proc_cgroup("4:memory:/x\n1:cpu,cpuacct:/y\n0::/z\nbad\n")
    assert paths == {"memory": "/x", "cpu": "/y", "cpuacct": "/y", "": "/z"}


def test_this_machine() -> None:
    # GIVEN this machine's real /proc and /sys
    pid = os.getpid()
    limits = read_limits(pid)
    memory = cgroup_of(pid, "memory")
    # THEN what is found agrees with the files themselves
    if not Path("/proc/self/cgroup").exists():
        pytest.skip("no /proc here")
    if memory is None:
        assert limits.memory_limit_bytes is None
        return
    assert memory.directory.is_dir()
    assert memory.version in (1, 2)
    assert limits.version in (1, 2)
    name = "memory.max" if memory.version == 2 else "memory.limit_in_bytes"
    own = memory.directory / name
    if own.exists() and limits.memory_limit_bytes is not None:
        text = own.read_text().strip()
        if text != "max" and int(text) < UNLIMITED_BYTES:
            assert limits.memory_limit_bytes <= int(text)
    usage_name = "memory.current" if memory.version == 2 else "memory.usage_in_bytes"
    if (memory.directory / usage_name).exists():
        used = memory_used_bytes(memory.version, memory.directory)
        assert used is not None and used >= 0
    # AND a child process, read through its own /proc/<pid>/cgroup, has the same limits
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=PIPE)
    try:
        assert read_limits(child.pid) == limits
    finally:
        child.communicate(b"")
