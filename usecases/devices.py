"""Device credentials (docs/SECURITY.md §6): admins register, list, revoke and rotate devices; the ingest route
authenticates a device key and learns whose readings it may post.

The key is shown once (register, rotate); the store keeps its SHA-256 (domain.device_keys says why not argon2).
A key's credential is read through the response cache under the device's own scope (L1 in the replica, L2 in
Redis, then PostgreSQL), so a busy device costs no database read; revoking or rotating invalidates that scope
after the commit, on every replica: refused within the pub/sub latency, at most `l1_cache_ttl_s` if the message is
lost (MultiLevelCache's bound). `last_seen_at` is written at most once per `last_seen_interval_s` per device per
replica, and a failed write never fails an ingest.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from cachetools import TTLCache

from config.logging import get_logger
from domain.device_keys import SECRET_BYTES, device_of, issue_key, key_matches
from storage.redis.keys import device_scope
from usecases.ports.cache import ResponseCache
from usecases.ports.clock import Clock
from usecases.ports.device_store import DeviceCredential, DeviceStore
from usecases.ports.read_models import Row

CREDENTIAL = "credential"  # the cache entry's name in a device's scope
MAX_DEVICES_PER_DRIVER = 1_000  # the invalidation on a driver change reads at most this many (a driver has a few)
_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder(DeviceCredential).decode


class DeviceKeyRefused(Exception):
    """401: the key is malformed, unknown, wrong or revoked; the message says which, as far as it is safe to."""


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """A device whose key checked out: it may post readings of `driver_id` only."""

    device_id: uuid.UUID
    driver_id: str


@dataclass(frozen=True, slots=True)
class DeviceTerms:
    """`cache_ttl_s`: a credential's L2 life (settings.cache_ttl_default); `last_seen_interval_s`: the least time
    between two `last_seen_at` writes of one device by one replica; `seen_memory`: devices remembered for that."""

    cache_ttl_s: int = 300
    last_seen_interval_s: float = 60.0
    seen_memory: int = 100_000


@dataclass(frozen=True, slots=True)
class IssuedDevice:
    """A device row and its key, which is never shown again."""

    row: Row
    key: str


class Devices:
    def __init__(self, store: DeviceStore, cache: ResponseCache, clock: Clock, terms: DeviceTerms, *,
                 new_secret: Callable[[], bytes] = lambda: secrets.token_bytes(SECRET_BYTES),
                 new_id: Callable[[], uuid.UUID] = uuid.uuid4) -> None:
        self.store = store
        self.cache = cache
        self.clock = clock
        self.terms = terms
        self.new_secret = new_secret
        self.new_id = new_id
        self._seen: TTLCache[uuid.UUID, bool] = TTLCache(terms.seen_memory, terms.last_seen_interval_s,
                                                         timer=clock.monotonic_s)
        self._log = get_logger("usecases.devices")

    # -- admin --------------------------------------------------------------------------------------

    async def register(self, driver_id: str, label: str) -> IssuedDevice:
        """MissingReference when the driver does not exist."""
        device_id = self.new_id()
        issued = issue_key(device_id, self.new_secret())
        row = await self.store.create_device(device_id, driver_id, label, issued.digest, self._now())
        return IssuedDevice(row, issued.key)

    async def list_devices(self, limit: int, offset: int, driver_id: str | None,
                   include_revoked: bool) -> tuple[int, Sequence[Row]]:
        return await self.store.list_devices(limit, offset, driver_id, include_revoked)

    async def get(self, device_id: uuid.UUID) -> Row | None:
        return await self.store.get_device(device_id)

    async def revoke(self, device_id: uuid.UUID) -> Row | None:
        row = await self.store.revoke_device(device_id, self._now())
        if row is not None:
            await self.cache.invalidate([device_scope(device_id)])  # after the commit: no replica re-caches it
        return row

    async def rotate(self, device_id: uuid.UUID) -> IssuedDevice | None:
        """A new key at once; the old one is refused from the next lookup (Conflict for a revoked device)."""
        issued = issue_key(device_id, self.new_secret())
        row = await self.store.rotate_key(device_id, issued.digest, self._now())
        if row is None:
            return None
        await self.cache.invalidate([device_scope(device_id)])
        return IssuedDevice(row, issued.key)

    async def driver_changed(self, driver_id: str) -> None:
        """A driver was deactivated or reactivated: its devices' cached credentials are stale on every replica."""
        _total, rows = await self.store.list_devices(MAX_DEVICES_PER_DRIVER, 0, driver_id, False)
        if rows:
            await self.cache.invalidate([device_scope(row["device_id"]) for row in rows])

    # -- ingest -------------------------------------------------------------------------------------

    async def authenticate(self, key: str) -> DeviceIdentity:
        """The device behind `key`, or DeviceKeyRefused. A malformed key costs no I/O; a known device's wrong key
        is refused from the cache; a revoked key is named as such only to whoever holds it."""
        device_id = device_of(key)
        if device_id is None:
            raise DeviceKeyRefused("device key malformed: expected the adk1.<device>.<secret> key that "
                                   "POST /api/v1/admin/devices issued")
        raw = await self.cache.get(device_scope(device_id), CREDENTIAL, lambda: self._load(device_id),
                                   self.terms.cache_ttl_s)
        credential = _DECODE(raw) if raw is not None else None
        if credential is None or not key_matches(key, credential.key_digest):
            raise DeviceKeyRefused("device key rejected: unknown device or wrong key")
        if credential.revoked:
            raise DeviceKeyRefused("device key revoked: ask an administrator for a new device key")
        if not credential.driver_active:
            raise DeviceKeyRefused(f"device key refused: driver {credential.driver_id!r} is deactivated")
        await self._note_seen(device_id)
        return DeviceIdentity(device_id, credential.driver_id)

    async def _load(self, device_id: uuid.UUID) -> bytes | None:
        credential = await self.store.credential(device_id)
        return None if credential is None else _ENCODE(credential)

    async def _note_seen(self, device_id: uuid.UUID) -> None:
        if device_id in self._seen:
            return
        self._seen[device_id] = True
        try:
            await self.store.record_seen(device_id, self._now())
        except Exception as error:  # last_seen_at is bookkeeping: a database hiccup must not refuse readings
            self._log.warning("device_last_seen_not_written", device_id=str(device_id), error=repr(error)[:200])

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now_ms() / 1000, UTC)
