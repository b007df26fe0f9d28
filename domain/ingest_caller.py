"""Whose readings a caller of the ingest route may post (docs/SECURITY.md §6): a device its driver's, a driver their
own, an admin anyone's. Pure: the API adapter (deployments/api/device_auth.py) finds out who the caller is.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IngestCaller:
    """`kind`: device | driver | admin; `driver_id`: the one driver whose readings it may post (None: any)."""

    kind: str
    driver_id: str | None
    device_id: uuid.UUID | None = None

    def refusal(self, driver_ids: Iterable[str]) -> str | None:
        """Why this batch is refused whole (a reading of another driver), or None. A device or driver mixing drivers
        is misconfigured or forging: partial acceptance would hide it."""
        if self.driver_id is None:
            return None
        foreign = {d for d in driver_ids if d != self.driver_id}
        if not foreign:
            return None
        who = "a device may post only its driver's" if self.kind == "device" else "a driver may post only their own"
        return (f"{who} readings ({self.driver_id}); this batch has readings of {len(foreign)} other driver(s); "
                "nothing was accepted")
