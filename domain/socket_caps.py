"""Open WebSockets per user and per client address, capped (pure; one instance per LiveGateway replica)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class SocketCaps:
    """`admit` counts a socket in or says why not; `release` counts it out. Caps are per replica."""

    per_user: int
    per_address: int
    by_user: Counter[str] = field(default_factory=Counter)
    by_address: Counter[str] = field(default_factory=Counter)

    def admit(self, user_id: str, address: str) -> str | None:
        if self.by_user[user_id] >= self.per_user:
            return f"too many open sockets for this user (at most {self.per_user})"
        if self.by_address[address] >= self.per_address:
            return f"too many open sockets from this address (at most {self.per_address})"
        self.by_user[user_id] += 1
        self.by_address[address] += 1
        return None

    def release(self, user_id: str, address: str) -> None:
        for counts, key in ((self.by_user, user_id), (self.by_address, address)):
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]
