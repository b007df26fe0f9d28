"""ScorerSink: where the ingest hands the trips that ended in a durable batch (the risk scorer, in production).

Fire and forget: `submit` must not wait for scoring. A sink that fails loses nothing (the scorer's catch-up
finds unscored trips), so the ingest logs the failure and never fails a batch for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.scoring import EndedTrip


class ScorerSink(Protocol):
    def submit(self, trips: Sequence[EndedTrip]) -> None: ...


class RecordingScorerSink:
    """A sink that keeps what it was given (tests; a pipeline run without a scorer uses None instead)."""

    def __init__(self) -> None:
        self.submitted: list[list[EndedTrip]] = []

    def submit(self, trips: Sequence[EndedTrip]) -> None:
        self.submitted.append(list(trips))
