"""AdminStore: the back office's writes and reads of drivers, policies and logins.

Rows cross as mappings (column → value). A write that collides with a unique key or a reference raises
`Conflict` (→ 409), one pointing at a missing row `MissingReference` (→ 422); the message names the field.
`None` / `False` answers mean "no such row" (→ 404).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from usecases.ports.read_models import Row


class Conflict(Exception):
    """A write collided with a unique key or a reference (→ HTTP 409); the message names the field."""


class MissingReference(Exception):
    """A write pointed at a row that does not exist (→ HTTP 422); the message names it."""


class AdminStore(Protocol):
    async def list_drivers(self, limit: int, offset: int, is_active: bool | None) -> tuple[int, Sequence[Row]]: ...

    async def create_driver(self, driver_id: str, fields: Mapping[str, Any]) -> Row: ...

    async def get_driver(self, driver_id: str) -> Row | None: ...

    async def update_driver(self, driver_id: str, changes: Mapping[str, Any]) -> Row | None: ...

    async def delete_driver(self, driver_id: str) -> bool: ...

    async def list_policies(self, limit: int, offset: int, status: str | None,
                            driver_id: str | None) -> tuple[int, Sequence[Row]]: ...

    async def create_policy(self, fields: Mapping[str, Any]) -> Row: ...

    async def get_policy(self, policy_id: uuid.UUID) -> Row | None: ...

    async def update_policy(self, policy_id: uuid.UUID, changes: Mapping[str, Any]) -> Row | None: ...

    async def delete_policy(self, policy_id: uuid.UUID) -> str | None:
        """The deleted policy's driver id, or None when there was no such policy."""
        ...

    async def list_users(self, limit: int, offset: int, role: str | None) -> tuple[int, Sequence[Row]]: ...

    async def create_user(self, *, username: str, password_hash: str, role: str, driver_id: str | None) -> Row: ...

    async def get_user(self, user_id: uuid.UUID) -> Row | None: ...

    async def update_user(self, user_id: uuid.UUID, changes: Mapping[str, Any]) -> Row | None: ...

    async def delete_user(self, user_id: uuid.UUID) -> bool: ...
