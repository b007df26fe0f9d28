"""How much the consumer's next poll takes and how long it waits for it (adaptive batching).

Pure: the consumer observes (backlog from cached fetch watermarks, what its last poll returned, batches in
flight), this decides. Large batches with a linger serve a drain (per-batch costs are paid once per 10,000
readings, PERF_NOTES.md); a caught-up stream wants the opposite, because a batch that waits to fill up holds
every reading already in it. So the next batch asks for what is waiting (plus room), between
`min_messages` and `max_messages`, and lingers only when well behind. This is "smart batching" (take what
is there, never wait while work could be sent; M. Thompson, mechanical-sympathy.blogspot.com, 2011) with a
linger that returns as the backlog grows, as Flink's buffer timeout or Kafka producers' `linger.ms` trade
latency for throughput only where it buys throughput.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BatchSizingRules:
    """Bounds of the policy. `min_messages` ≤ `max_messages`; times in seconds, ≥ 0."""

    min_messages: int = 500  # the cap when caught up: ~50 ms of a 10,000 readings/s stream
    max_messages: int = 10_000  # PERF_NOTES.md: ~10k per Ray call and transaction drains fastest
    max_linger_s: float = 0.05  # the wait to fill a batch when far behind (the fixed linger it replaces)
    idle_wait_s: float = 0.1  # an empty poll with nothing in flight blocks this long (it returns at the first message)

    def __post_init__(self) -> None:
        if not 1 <= self.min_messages <= self.max_messages:
            raise ValueError(f"need 1 <= min_messages <= max_messages, got {self.min_messages}, {self.max_messages}")
        if self.max_linger_s < 0 or self.idle_wait_s < 0:
            raise ValueError("max_linger_s and idle_wait_s must be >= 0")


@dataclass(frozen=True, slots=True)
class PollObservation:
    """What the consumer knows before its next poll."""

    backlog: int  # messages past this consumer's poll position, summed over its partitions (fetch watermarks)
    last_polled: int  # messages its previous poll returned
    inflight: int  # batches submitted and not yet acknowledged


@dataclass(frozen=True, slots=True)
class BatchTarget:
    """The next poll: take at most `max_messages`; if none are there, wait up to `first_wait_s` for the first;
    once some are there, wait up to `linger_s` more to fill the batch."""

    max_messages: int
    linger_s: float
    first_wait_s: float


def caught_up_target(rules: BatchSizingRules) -> BatchTarget:
    """Where a (re)started consumer begins: small and immediate (a backlog grows it on the next poll)."""
    return BatchTarget(rules.min_messages, 0.0, rules.idle_wait_s)


def next_target(previous: BatchTarget, seen: PollObservation, rules: BatchSizingRules) -> BatchTarget:
    """The next poll's target. Non-decreasing in `seen.backlog`; always within the rules' bounds.

    The size is what is waiting plus one caught-up batch of room for what arrives meanwhile, so a poll that
    the backlog predicted does not come back full. One that does come back full may have left more behind
    than the cached watermark shows (it is as old as the last fetch), so the size at least doubles: a stale
    watermark cannot keep a consumer at small batches while it falls behind. The linger grows with the
    square of how far behind: it pays off only well behind, and a normal steady state (a few hundred
    readings waiting) then costs well under a millisecond. With batches in flight an empty poll does not
    block: the consumer collects their acknowledgements instead, and what arrives meanwhile makes the
    next batch."""
    wanted = max(0, seen.backlog) + rules.min_messages
    if seen.last_polled >= previous.max_messages:
        wanted = max(wanted, 2 * previous.max_messages)
    size = min(rules.max_messages, wanted)
    return BatchTarget(
        max_messages=size,
        linger_s=rules.max_linger_s * _behind_fraction(size, rules) ** 2,
        first_wait_s=0.0 if seen.inflight > 0 else rules.idle_wait_s,
    )


def _behind_fraction(size: int, rules: BatchSizingRules) -> float:
    """0 at the caught-up size, 1 at the maximal one (and 1 when the two are equal: fixed batches linger)."""
    span = rules.max_messages - rules.min_messages
    return 1.0 if span == 0 else (size - rules.min_messages) / span
