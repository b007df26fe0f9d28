"""RedisPrivacyNotifier: the PrivacyNotifier port. A driver's new privacy state goes out on `privacy:changed`, which
every live-feed replica's hub follows on the same connection as the driver channels (deployments/live_hub.py): Redis
delivers one connection's messages in publish order, so no message published after the change is sent unredacted."""

from __future__ import annotations

import msgspec
import redis.asyncio as aioredis

from domain.privacy import PrivacyState
from storage.redis.keys import PRIVACY_CHANNEL, recent_key

_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder(PrivacyState).decode


def privacy_payload(state: PrivacyState) -> bytes:
    return _ENCODE(state)


def decode_privacy(payload: bytes) -> PrivacyState | None:
    try:
        return _DECODE(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class RedisPrivacyNotifier:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def privacy_changed(self, state: PrivacyState) -> None:
        await self._redis.publish(PRIVACY_CHANNEL, privacy_payload(state))

    async def forget_live(self, driver_id: str) -> None:
        await self._redis.delete(recent_key(driver_id))
