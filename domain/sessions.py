"""Which changes end a user's sessions, and when a token stops being good (pure; docs/SECURITY.md §8).

A token carries the version its user had when it was minted (`ver`); bumping the version revokes every token
minted before. A user without a stored version is at `FIRST_VERSION`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FIRST_VERSION = 0
# Login fields whose change must end the user's sessions: a disabled account, another role, another driver's
# data, a new password (the old one may have leaked). Deleting the login and logging out revoke too.
REVOKING_FIELDS = frozenset({"is_active", "role", "driver_id", "password_hash", "password"})


def revokes_sessions(changes: Mapping[str, Any]) -> bool:
    """True when a patch of a login touches a field in REVOKING_FIELDS (even to the same value: cheap and safe)."""
    return not REVOKING_FIELDS.isdisjoint(changes)


def revocation_reason(token_version: int, current_version: int) -> str | None:
    """None while the token's version is the user's current one; else why it is refused."""
    if token_version == current_version:
        return None
    return "token revoked (logout, or the account changed): log in again"
