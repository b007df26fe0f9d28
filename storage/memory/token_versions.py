"""InMemoryTokenVersions: the TokenVersionStore port as a dict, and a notifier that records what it announced."""

from __future__ import annotations

from collections.abc import Sequence

from domain.sessions import FIRST_VERSION


class InMemoryTokenVersions:
    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.reads = 0

    async def current(self, user_id: str) -> int:
        self.reads += 1
        return self.versions.get(user_id, FIRST_VERSION)

    async def bump(self, user_ids: Sequence[str]) -> None:
        for user_id in set(user_ids):
            self.versions[user_id] = self.versions.get(user_id, FIRST_VERSION) + 1


class RecordingNotifier:
    def __init__(self) -> None:
        self.announced: list[list[str]] = []

    async def announce_users_changed(self, user_ids: Sequence[str]) -> None:
        self.announced.append(sorted(user_ids))
