"""ClaimStore: the claims that crashes opened (first notice of loss, docs/API.md "Claims").

Claims are opened by the event store's write of a batch (`domain.claims.claims_opened`, in the same transaction
as the crash event), never through this port; it reads them and records the driver's one decision. Rows cross
as mappings (column → value): `claim_id, crash_event_id, driver_id, trip_id, occurred_at, trigger, peak_g, lat,
lon, speed_kmh, status, opened_at, decided_at, decided_by, note`, plus `readings` (a list of objects) for one
claim. Lists are newest first (occurred_at, then claim_id), one page at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from domain.claims import ClaimStatus
from usecases.ports.read_models import Row


class ClaimStore(Protocol):
    async def list_claims(self, *, status: str | None, driver_id: str | None, limit: int,
                          offset: int) -> tuple[int, Sequence[Row]]:
        """(total, the page) of the claims matching both filters (None = any), without their readings."""
        ...

    async def claim(self, claim_id: uuid.UUID) -> Row | None:
        """One claim with its readings, or None."""
        ...

    async def record_decision(self, claim_id: uuid.UUID, *, status: ClaimStatus, decided_by: uuid.UUID | None,
                              note: str | None, decided_at: datetime) -> Row | None:
        """Move an OPEN claim to `status` (compare-and-set on 'open'); the updated claim, or None when it was not
        open any more (a concurrent decision won)."""
        ...
