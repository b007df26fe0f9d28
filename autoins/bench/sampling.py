"""What the benchmark watches while a run drains: durable counts over time, memory and CPU per process.

All psutil use of the benchmark lives here. `Timeline` holds (seconds, durable readings) samples and
turns them into a throughput curve; `RssPeaks` keeps the peak resident set size per watched process
and of their sum; `CpuMeter` takes two snapshots of every process's CPU time and splits the difference
by role (actors, PostgreSQL, broker, Redis, Ray's own processes, this process, the rest of the machine).
RSS counts the shared pages a process touched (Ray's object store is mapped into every worker), so the
sum over actors overstates private memory a little.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psutil

MB = 1024 * 1024


@dataclass
class Timeline:
    """(seconds since the run's t0, durable readings) samples, in order."""

    points: list[tuple[float, int]] = field(default_factory=list)

    def add(self, t_s: float, durable: int) -> None:
        self.points.append((t_s, durable))

    def rates(self, window_s: float = 2.0) -> list[tuple[float, float]]:
        """(t, events/s over the trailing `window_s`): commits land in batch-sized steps, so a single
        0.25 s interval is either 0 or a spike; a window of several commits shows the sustained rate."""
        out: list[tuple[float, float]] = []
        j = 0
        for t, durable in self.points:
            while j < len(self.points) - 1 and self.points[j + 1][0] <= t - window_s:
                j += 1
            t0, d0 = self.points[j]
            if t - t0 > 0:
                out.append((t, (durable - d0) / (t - t0)))
        return out


class RssPeaks:
    """Peak RSS (bytes) per named process and of the sum over them, from repeated `sample()` calls."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._procs: dict[str, psutil.Process] = {}
        for name, pid in pids.items():
            try:
                self._procs[name] = psutil.Process(pid)
            except psutil.Error:
                continue
        self.peak: dict[str, int] = dict.fromkeys(self._procs, 0)
        self.peak_sum = 0

    def sample(self) -> None:
        total = 0
        for name, proc in self._procs.items():
            try:
                rss = proc.memory_info().rss
            except psutil.Error:  # the process is gone (a restart): keep its peak
                continue
            total += rss
            self.peak[name] = max(self.peak[name], rss)
        self.peak_sum = max(self.peak_sum, total)

    def peaks_mb(self) -> dict[str, float]:
        return {name: round(value / MB, 1) for name, value in self.peak.items()}


@dataclass(frozen=True)
class CpuSnapshot:
    per_process: dict[tuple[int, float], tuple[str, float]]  # (pid, create_time) -> (name, cpu seconds)
    machine: dict[str, float]  # the machine's CPU seconds by kind (user, system, softirq, steal, …)
    taken_at: float


class CpuMeter:
    """CPU between `start()` and `finish()`. `sample()` now and then (every ~1 s): a process that exits
    in the window (an autovacuum worker, a py-spy) keeps the CPU it had at its last sample."""

    def __init__(self) -> None:
        self.first: CpuSnapshot | None = None
        self._seen: dict[tuple[int, float], tuple[str, float]] = {}

    @property
    def started(self) -> bool:
        return self.first is not None

    def start(self) -> None:
        self.first = cpu_snapshot()
        self._seen = dict(self.first.per_process)

    def sample(self) -> None:
        if self.first is not None:
            self._seen.update(cpu_snapshot().per_process)

    def finish(self, roles: Mapping[int, str], ray_root: int | None) -> dict:
        end = cpu_snapshot()
        if self.first is None:
            self.first = end
        merged = CpuSnapshot({**self._seen, **end.per_process}, end.machine, end.taken_at)
        return cpu_by_role(self.first, merged, roles, ray_root)


def cpu_snapshot() -> CpuSnapshot:
    """CPU seconds (user + system) of every process, and of the whole machine by kind. The PostgreSQL
    postmaster also gets its reaped children's (autovacuum workers come and go between samples); no other
    process does: a reaped Ray worker or server would bring its whole lifetime into the window."""
    per_process = {}
    for proc in psutil.process_iter(["pid", "name", "create_time", "cpu_times"]):
        info = proc.info
        t = info.get("cpu_times")
        if t is None or info.get("create_time") is None:
            continue
        name = info["name"] or ""
        used = t.user + t.system + (t.children_user + t.children_system if name.startswith("postgres") else 0.0)
        per_process[(info["pid"], info["create_time"])] = (name, used)
    return CpuSnapshot(per_process, psutil.cpu_times()._asdict(), time.time())


def cpu_by_role(start: CpuSnapshot, end: CpuSnapshot, roles: Mapping[int, str], ray_root: int | None) -> dict:
    """CPU seconds between two snapshots, by role: `roles` names pids (actors, broker, Redis);
    `postgres` is every PostgreSQL server process (the whole server, other databases included);
    `ray` every other descendant of `ray_root` (GCS, raylet, idle workers, agents); `bench` this
    process; `irq` kernel interrupt time (loopback networking); `other` the rest of the machine's busy
    time (other users of the host, processes that exited unsampled); `steal` the hypervisor's."""
    descendants: set[int] = set()
    if ray_root is not None:
        try:
            descendants = {p.pid for p in psutil.Process(ray_root).children(recursive=True)}
        except psutil.Error:
            descendants = set()
    me = os.getpid()
    out: dict[str, float] = {}
    strangers: dict[str, float] = {}
    for key, (name, cpu_s) in end.per_process.items():
        pid, created = key
        if key in start.per_process:
            used = cpu_s - start.per_process[key][1]
        elif created >= start.taken_at - 1.0:  # born during the window
            used = cpu_s
        else:
            continue
        if pid in roles:
            role = roles[pid]
        elif name.startswith("postgres"):
            role = "postgres"
        elif pid == me:
            role = "bench"
        elif pid in descendants:
            role = "ray"
        else:
            role = "unattributed"
            strangers[name] = strangers.get(name, 0.0) + max(0.0, used)
        out[role] = out.get(role, 0.0) + max(0.0, used)
    delta = {k: max(0.0, end.machine.get(k, 0.0) - v) for k, v in start.machine.items()}
    # busy = what ran on this machine's CPUs; kernel time in interrupts (loopback networking) is in
    # irq/softirq and belongs to no process. steal = the hypervisor ran someone else: not our CPU.
    machine = sum(delta.get(k, 0.0) for k in ("user", "nice", "system", "irq", "softirq"))
    attributed = sum(v for k, v in out.items() if k != "unattributed")
    out.pop("unattributed", None)
    out["irq"] = delta.get("irq", 0.0) + delta.get("softirq", 0.0)
    out["other"] = max(0.0, machine - attributed - out["irq"])
    out["machine"] = machine
    out["steal"] = delta.get("steal", 0.0)
    out["window_s"] = end.taken_at - start.taken_at
    rounded: dict = {k: round(v, 2) for k, v in out.items()}
    top = sorted(strangers.items(), key=lambda kv: -kv[1])[:3]
    rounded["other_top"] = {name: round(v, 2) for name, v in top if v >= 0.05}
    return rounded


def ray_descendants(exclude: set[int]) -> list[psutil.Process]:
    """This process's descendants except `exclude` (the private broker and Redis): a local Ray's."""
    try:
        return [p for p in psutil.Process().children(recursive=True) if p.pid not in exclude]
    except psutil.Error:
        return []


def wait_exited(procs: list[psutil.Process], timeout_s: float) -> int:
    """Wait until `procs` have exited (Ray's workers linger after `ray.shutdown()` and would tax
    whatever is measured next); returns how many are still alive."""
    _gone, alive = psutil.wait_procs(procs, timeout=timeout_s)
    return len(alive)


def busy_percent(interval_s: float) -> float:
    """The machine's CPU use (% of all cores) over the next `interval_s`."""
    return round(psutil.cpu_percent(interval=interval_s), 1)
