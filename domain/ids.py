"""Deterministic identifiers (house habit 5): uuid5 of the inputs, so a replay derives the same ids.

Pure. The namespace below is part of the stored data: changing it would re-identify every trip and
domain event, so it never changes.
"""

from __future__ import annotations

import uuid

# Fixed forever: uuid5(NAMESPACE_URL, "urn:autoins:domain-ids:v1"), written out so it cannot drift.
NAMESPACE = uuid.UUID("8fcf915a-d243-5102-bc0b-9f6e35100a37")

_SEP = "\x1f"  # ASCII unit separator: cannot appear in a driver id or a UUID, so parts never collide


def derive_id(kind: str, *parts: object) -> uuid.UUID:
    """uuid5 over `kind` and `parts` (joined by an unambiguous separator). Same inputs, same id."""
    return uuid.uuid5(NAMESPACE, _SEP.join((kind, *map(str, parts))))


def trip_id(driver_id: str, first_reading_id: uuid.UUID) -> uuid.UUID:
    """The id of the trip that starts with `first_reading_id` (a driver's readings have unique ids)."""
    return derive_id("trip", driver_id, first_reading_id)


def trip_event_id(tag: str, trip: uuid.UUID) -> uuid.UUID:
    """Id of a once-per-trip event (`trip_started`, `trip_ended`, `trip_discarded`)."""
    return derive_id(tag, trip)


def episode_event_id(tag: str, driver_id: str, anchor_reading_id: uuid.UUID) -> uuid.UUID:
    """Id of an event anchored on the reading that started it (harsh, speeding, phone use, crash)."""
    return derive_id(tag, driver_id, anchor_reading_id)
