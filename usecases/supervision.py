"""Supervision of the pipeline, the pure half: desired actors vs what was observed → decisions as data.

Ray restarts a crashed actor by itself (`max_restarts=-1`) but cannot bring back one it gave up on (a
constructor that keeps failing, arguments lost from the object store, a node that never returns), and a
consumer's or the scorer's long-running `run()` call ends with the process that ran it when its owner is gone.
The supervisor actor (actors/supervisor.py) observes each named actor once per tick and asks `reconcile`
what to do, the way Serve's controller reconciles deployment state: plain code, time passed in, no Ray.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    CONSUMER = "consumer"
    SHARD = "shard"
    PERSISTENCE = "persistence"
    SCORER = "scorer"
    MAINTENANCE = "maintenance"  # partitions, retention, ANALYZE, size reports (usecases/maintenance.py)


# Consumers hold handles of these (the persistence actors find the scorer by name instead).
HELD_BY_CONSUMERS = frozenset({Role.SHARD, Role.PERSISTENCE})
# Roles whose `run()` loop must be running for the pipeline to make progress.
LOOPING = frozenset({Role.CONSUMER, Role.SCORER, Role.MAINTENANCE})


class ActorState(StrEnum):
    ALIVE = "alive"  # answered a ping this tick
    RESTARTING = "restarting"  # exists but did not answer (Ray restarts it, or it is busy starting)
    DEAD = "dead"  # Ray gave up on it, or no actor has this name


@dataclass(frozen=True, slots=True)
class ActorSpec:
    """One actor the pipeline needs: `name` is unique in the Ray namespace."""

    role: Role
    index: int
    name: str


@dataclass(frozen=True, slots=True)
class Observation:
    """What one tick saw of one actor. `loop_running` is None for roles without a run loop."""

    state: ActorState
    loop_running: bool | None = None
    pid: int | None = None


class Action(StrEnum):
    CREATE = "create"  # create (or re-create) the actor
    START_LOOP = "start_loop"  # call its run() again
    REBIND_CONSUMERS = "rebind_consumers"  # re-create consumers: they hold handles of a replaced shard/persister


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    name: str
    reason: str


@dataclass
class SupervisionRules:
    """How long an actor may stay unanswering before it counts as gone, and the crash-loop backoff."""

    restarting_grace_s: float = 30.0  # Ray's own restart normally answers within seconds
    recreate_backoff_s: float = 1.0  # doubles per re-creation of the same actor, up to the cap
    recreate_backoff_max_s: float = 60.0


@dataclass
class ActorHistory:
    """What the supervisor remembers of one actor between ticks."""

    unanswered_since_s: float | None = None
    recreations: int = 0
    restarts_seen: int = 0  # times it was seen restarting after being alive (for health and alerts)
    last_pid: int | None = None
    next_recreate_at_s: float = 0.0
    last_state: ActorState | None = None


@dataclass
class Supervision:
    """The desired pipeline and each actor's history; `reconcile` is the whole decision."""

    specs: Sequence[ActorSpec]
    rules: SupervisionRules = field(default_factory=SupervisionRules)
    history: dict[str, ActorHistory] = field(default_factory=dict)

    def reconcile(self, observed: Mapping[str, Observation], now_s: float) -> list[Decision]:
        decisions: list[Decision] = []
        replaced_held = False
        for spec in self.specs:
            seen = observed.get(spec.name, Observation(ActorState.DEAD))
            past = self.history.setdefault(spec.name, ActorHistory())
            self._remember(past, seen, now_s)
            gone = seen.state is ActorState.DEAD or (
                seen.state is ActorState.RESTARTING
                and past.unanswered_since_s is not None
                and now_s - past.unanswered_since_s >= self.rules.restarting_grace_s
            )
            if gone:
                if now_s < past.next_recreate_at_s:
                    continue  # crash loop: wait out the backoff
                decisions.append(Decision(Action.CREATE, spec.name, _why(seen, past, now_s)))
                past.recreations += 1
                past.unanswered_since_s = None
                delay = self.rules.recreate_backoff_s * 2 ** (past.recreations - 1)
                past.next_recreate_at_s = now_s + min(self.rules.recreate_backoff_max_s, delay)
                replaced_held |= spec.role in HELD_BY_CONSUMERS
            elif spec.role in LOOPING and seen.state is ActorState.ALIVE and seen.loop_running is False:
                decisions.append(Decision(Action.START_LOOP, spec.name, "its run() loop is not running"))
        if replaced_held:
            decisions.append(Decision(Action.REBIND_CONSUMERS, "*", "a shard or persistence actor was replaced"))
        return decisions

    def _remember(self, past: ActorHistory, seen: Observation, now_s: float) -> None:
        if seen.state is ActorState.ALIVE:
            past.unanswered_since_s = None
            if past.last_pid is not None and seen.pid is not None and seen.pid != past.last_pid:
                past.restarts_seen += 1  # Ray restarted it between two ticks
            past.last_pid = seen.pid if seen.pid is not None else past.last_pid
        elif seen.state is ActorState.RESTARTING:
            if past.unanswered_since_s is None:
                past.unanswered_since_s = now_s
            if past.last_state is ActorState.ALIVE:
                past.restarts_seen += 1
                past.last_pid = None  # the next pid is a new process: do not count it twice
        past.last_state = seen.state

    def health(self, observed: Mapping[str, Observation]) -> dict:
        """`ok` when every actor answers (and loops run); per role: alive/restarting/dead counts."""
        roles: dict[str, dict[str, int]] = {}
        for spec in self.specs:
            state = observed.get(spec.name, Observation(ActorState.DEAD)).state
            counts = roles.setdefault(spec.role.value, {s.value: 0 for s in ActorState})
            counts[state.value] += 1
        ok = all(c[ActorState.ALIVE.value] == sum(c.values()) for c in roles.values())
        return {
            "status": "ok" if ok else "degraded",
            "roles": roles,
            "restarts": {n: h.restarts_seen for n, h in self.history.items() if h.restarts_seen},
            "recreations": {n: h.recreations for n, h in self.history.items() if h.recreations},
        }


def pipeline_specs(
    prefix: str, consumers: int, shards: int, persisters: int, maintenance: bool = False
) -> list[ActorSpec]:
    """Every actor of a pipeline, named `<prefix><role>-<i>` (the scorer: `<prefix>risk-scorer`, the maintenance
    actor: `<prefix>maintenance`). The order is the creation order: the scorer and shards first, then
    persistence (it holds the scorer), then consumers; maintenance last (nothing holds it)."""
    specs = [ActorSpec(Role.SCORER, 0, f"{prefix}risk-scorer")]
    specs += [ActorSpec(Role.SHARD, i, f"{prefix}shard-{i}") for i in range(shards)]
    specs += [ActorSpec(Role.PERSISTENCE, i, f"{prefix}persistence-{i}") for i in range(persisters)]
    specs += [ActorSpec(Role.CONSUMER, i, f"{prefix}consumer-{i}") for i in range(consumers)]
    if maintenance:
        specs.append(ActorSpec(Role.MAINTENANCE, 0, f"{prefix}maintenance"))
    return specs


def names_of(specs: Iterable[ActorSpec], role: Role) -> list[str]:
    return [s.name for s in specs if s.role is role]


def _why(seen: Observation, past: ActorHistory, now_s: float) -> str:
    if seen.state is ActorState.DEAD:
        return "dead or missing"
    since = now_s if past.unanswered_since_s is None else past.unanswered_since_s
    waited = now_s - since
    return f"not answering for {waited:.0f} s"
