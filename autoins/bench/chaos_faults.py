"""The faults of `autoins bench chaos`: which processes to kill, how to find them, and when each is over.

A fault is a SIGKILL of one process of the running system — a pipeline actor (consumer, shard, persistence,
scorer, supervisor), an API or risk-model Serve replica, the Serve controller — or, with `--node-loss`, a worker
node removed without warning. It is over when (a) ingest has resumed (more readings durable than at the kill)
and (b) the victim's role is served again by a live process other than the killed one.

The plan (which kinds, in which order) is a pure function of the seed, so a run can be repeated.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from dataclasses import dataclass, field

import psutil

from config.names import API_APP, API_DEPLOYMENT, RISK_APP, RISK_DEPLOYMENT

PIPELINE_KINDS = ("consumer", "shard", "persistence", "scorer", "supervisor")
SERVE_KINDS = ("api", "risk", "controller")
FAULT_KINDS = PIPELINE_KINDS + SERVE_KINDS
NODE_LOSS = "node"

# Ray titles its worker processes `ray::<actor class>` (Serve replicas `ray::ServeReplica:<app>:<deployment>`).
PROCESS_TITLES = {
    "api": f"ray::ServeReplica:{API_APP}:{API_DEPLOYMENT}",
    "risk": f"ray::ServeReplica:{RISK_APP}:{RISK_DEPLOYMENT}",
    "controller": "ray::ServeController",
}


def plan_faults(kinds: list[str], kills: int, seed: int, *, explicit: bool) -> list[str]:
    """`explicit`: exactly `kinds`, in that order. Otherwise `kills` kinds drawn at random (seeded) from
    `kinds`, without repeating one before all were drawn once."""
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kind(s) {', '.join(unknown)}; choose from {', '.join(FAULT_KINDS)}")
    if explicit:
        return list(kinds)
    rng = random.Random(seed)
    plan: list[str] = []
    while len(plan) < kills:
        round_ = list(kinds)
        rng.shuffle(round_)
        plan.extend(round_)
    return plan[:kills]


@dataclass
class Fault:
    """One injected fault and what it cost."""

    kind: str
    target: str  # actor name, replica title or node id
    pid: int | None
    index: int = 0  # which instance of the role (shard 0, shard 1, …)
    peers: frozenset[int] = frozenset()  # the role's processes just before the kill (Serve replicas)
    at_s: float = 0.0  # seconds since the faulty run began
    durable_at_kill: int = 0
    resumed_s: float | None = None  # until more readings were durable than at the kill
    back_s: float | None = None  # until the role answered again from a new process
    new_pid: int | None = None
    failed_requests: int = 0  # API requests that failed between the kill and the fault being over, after a retry
    failed_first_try: int = 0  # … on their first try
    notes: list[str] = field(default_factory=list)

    drained: bool = False  # every reading was durable before the kill: there was no ingest to resume

    @property
    def recovered_s(self) -> float | None:
        if self.back_s is None or (self.resumed_s is None and not self.drained):
            return None
        return max(self.resumed_s or 0.0, self.back_s)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "target": self.target, "pid": self.pid, "new_pid": self.new_pid,
                "at_s": round(self.at_s, 1), "durable_at_kill": self.durable_at_kill,
                "resumed_s": _round(self.resumed_s), "back_s": _round(self.back_s),
                "recovered_s": _round(self.recovered_s), "drained": self.drained,
                "failed_requests": self.failed_requests, "failed_first_try": self.failed_first_try,
                "notes": self.notes}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# -- finding victims ---------------------------------------------------------------------------------------


def titled_pids(title: str) -> set[int]:
    """Pids of this process's descendants (the bench's own Ray nodes, never another cluster on the machine)
    whose command line starts with `title` (Ray's process title for an actor class)."""
    found = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            cmdline = proc.cmdline()
        except psutil.Error:
            continue
        if cmdline and cmdline[0].startswith(title):
            found.add(proc.pid)
    return found


async def pipeline_actor_pid(pipeline, kind: str, index: int, timeout_s: float = 5.0) -> tuple[str, int, str]:
    """(actor name, pid, node id) of one pipeline actor, from its own status."""
    handle, method, name = _pipeline_handle(pipeline, kind, index)
    answer = await asyncio.wait_for(getattr(handle, method).remote(), timeout_s)
    if kind == "supervisor":
        answer = answer["supervisor"]
    return name, int(answer["pid"]), str(answer.get("node", ""))


def pipeline_size(pipeline, kind: str) -> int:
    return {"consumer": len(pipeline.consumers), "shard": len(pipeline.shards),
            "persistence": len(pipeline.persisters), "scorer": 1, "supervisor": 1}[kind]


def _pipeline_handle(pipeline, kind: str, index: int):
    prefix = pipeline.prefix
    if kind == "consumer":
        return pipeline.consumers[index], "status", f"{prefix}consumer-{index}"
    if kind == "shard":
        return pipeline.shards[index], "stats", f"{prefix}shard-{index}"
    if kind == "persistence":
        return pipeline.persisters[index], "stats", f"{prefix}persistence-{index}"
    if kind == "scorer":
        return pipeline.scorer, "stats", f"{prefix}risk-scorer"
    if kind == "supervisor":
        return pipeline.supervisor, "status", f"{prefix}pipeline-supervisor"
    raise ValueError(kind)


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


async def wait_until_back(probe, old_pid: int | None, deadline_s: float, every_s: float = 0.1) -> tuple[float | None,
                                                                                                       int | None]:
    """Poll `probe()` (an awaitable returning a pid or None) until it names a pid other than `old_pid`;
    (seconds, new pid), or (None, None) at the deadline."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        try:
            pid = await probe()
        except Exception:  # the actor is restarting: not back yet
            pid = None
        if pid is not None and pid != old_pid:
            return time.monotonic() - started, pid
        await asyncio.sleep(every_s)
    return None, None
