"""Claims use case (first notice of loss): the admin's list and detail, a driver's own claims, and the driver's
one confirmation or rejection. Decode → handler → encode in the routers; the decision is `domain.claims.decide`,
the write a compare-and-set on the open status, so two answers at once leave exactly one recorded."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.claims import ClaimTransitionError, decide
from domain.privacy import PrivacyState, withhold_claim
from usecases.ports.claims import ClaimStore
from usecases.ports.clock import Clock
from usecases.ports.privacy_store import PrivacyStore
from usecases.ports.read_models import Row


class ClaimNotFound(LookupError):
    """No such claim, or one this caller may not read (the same answer: ids cannot be probed)."""


class NotClaimant(PermissionError):
    """Only the claim's own driver confirms or rejects it (an admin reads, never answers for the driver)."""


@dataclass(frozen=True, slots=True)
class ClaimsPage:
    total: int
    rows: Sequence[Row]


class Claims:
    def __init__(self, store: ClaimStore, clock: Clock, privacy: PrivacyStore | None = None) -> None:
        self.store = store
        self.clock = clock
        self.privacy = privacy  # a claim on a withheld trip shows no position (docs/PRIVACY.md); None: unit fakes

    async def page(self, *, status: str | None, driver_id: str | None, page: int, page_size: int) -> ClaimsPage:
        total, rows = await self.store.list_claims(status=status, driver_id=driver_id, limit=page_size,
                                                   offset=(page - 1) * page_size)
        states: dict[str, PrivacyState | None] = {}
        for driver in {row["driver_id"] for row in rows}:
            states[driver] = await self._privacy(driver)
        return ClaimsPage(total, [withhold_claim(row, states[row["driver_id"]]) for row in rows])

    async def claim(self, claim_id: uuid.UUID, may_read: Callable[[str], bool]) -> Row:
        row = await self.store.claim(claim_id)
        if row is None or not may_read(row["driver_id"]):
            raise ClaimNotFound(f"claim {claim_id} not found")
        return withhold_claim(row, await self._privacy(row["driver_id"]))

    async def _privacy(self, driver_id: str) -> PrivacyState | None:
        return None if self.privacy is None else await self.privacy.state(driver_id)

    async def answer(self, claim_id: uuid.UUID, *, driver_id: str | None, user_id: uuid.UUID | None,
                     confirmed: bool, note: str | None, may_read: Callable[[str], bool]) -> Row:
        """The driver's answer: raises ClaimNotFound, NotClaimant, or ClaimTransitionError (not open any more)."""
        row = await self.claim(claim_id, may_read)
        if driver_id is None or row["driver_id"] != driver_id:
            raise NotClaimant("only the claim's driver can confirm or reject it")
        status = decide(row["status"], confirmed)
        decided_at = datetime.fromtimestamp(self.clock.now_ms() / 1000, UTC)
        updated = await self.store.record_decision(claim_id, status=status, decided_by=user_id, note=note,
                                                   decided_at=decided_at)
        if updated is None:  # another answer was recorded between the read and the write
            raise ClaimTransitionError("claim was answered already; only an open claim can be confirmed or rejected")
        return withhold_claim(updated, await self._privacy(row["driver_id"]))
