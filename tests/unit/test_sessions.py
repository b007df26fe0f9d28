"""Revocation over the fakes (docs/SECURITY.md §8): which login changes end sessions, the per-replica version
cache (its TTL bound, the invalidation that makes it immediate, the read that raced one), logout."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from domain.sessions import REVOKING_FIELDS, revokes_sessions
from storage.memory.admin_store import InMemoryAdminStore
from storage.memory.cache import InMemoryResponseCache
from storage.memory.token_versions import InMemoryTokenVersions, RecordingNotifier
from usecases.admin import AdminWrites
from usecases.ports.clock import FakeClock
from usecases.sessions import Sessions

pytestmark = pytest.mark.unit


def _sessions(ttl_s: float = 5.0) -> tuple[Sessions, InMemoryTokenVersions, RecordingNotifier, FakeClock]:
    store, notifier, clock = InMemoryTokenVersions(), RecordingNotifier(), FakeClock()
    return Sessions(store, notifier, ttl_s=ttl_s, clock=clock), store, notifier, clock


async def _hash(password: str) -> str:
    return f"hashed:{password}"


@pytest.mark.parametrize("field", sorted(REVOKING_FIELDS))
def test_disable_role_driver_and_password_changes_revoke(field):
    assert revokes_sessions({field: None})


def test_other_changes_and_an_empty_patch_do_not():
    assert not revokes_sessions({})
    assert not revokes_sessions({"last_login_at": None, "username": "x"})


async def test_a_token_of_the_current_version_is_good_and_an_older_one_revoked():
    sessions, store, _, _ = _sessions()
    assert await sessions.revocation("u1", 0) is None
    store.versions["u2"] = 3
    assert await sessions.revocation("u2", 3) is None
    assert "revoked" in await sessions.revocation("u2", 2)


async def test_versions_are_read_once_per_ttl_and_a_revocation_here_is_immediate():
    sessions, store, notifier, _ = _sessions(ttl_s=5.0)
    for _ in range(10):
        assert await sessions.revocation("u1", 0) is None
    assert store.reads == 1
    await sessions.revoke(["u1"])
    assert await sessions.revocation("u1", 0) is not None
    assert notifier.announced == [["u1"]]


async def test_a_revocation_on_another_replica_is_seen_at_its_message_or_within_the_ttl():
    store, clock = InMemoryTokenVersions(), FakeClock()
    here = Sessions(store, RecordingNotifier(), ttl_s=5.0, clock=clock)
    there = Sessions(store, RecordingNotifier(), ttl_s=5.0, clock=clock)
    assert await here.revocation("u1", 0) is None
    await there.revoke(["u1"])
    assert await here.revocation("u1", 0) is None  # message not delivered yet: the cached version holds
    clock.advance(5.0)
    assert await here.revocation("u1", 0) is not None  # the TTL bound, even if the message is lost
    assert await here.revocation("u1", 1) is None
    await there.revoke(["u1"])
    here.users_changed(["u1"])  # the message
    assert await here.revocation("u1", 1) is not None


async def test_a_read_that_raced_an_invalidation_is_used_once_not_kept():
    store = InMemoryTokenVersions()
    sessions = Sessions(store, RecordingNotifier(), ttl_s=60.0)
    started, release = asyncio.Event(), asyncio.Event()
    real = store.current

    async def slow(user_id: str) -> int:
        version = await real(user_id)
        started.set()
        await release.wait()
        return version

    store.current = slow
    read = asyncio.create_task(sessions.current("u1"))
    await started.wait()
    store.versions["u1"] = 1
    sessions.users_changed(["u1"])
    release.set()
    assert await read == 0
    store.current = real
    assert await sessions.current("u1") == 1


async def test_missed_messages_forget_every_version_and_tell_the_hooks():
    sessions, store, _, _ = _sessions(ttl_s=60.0)
    seen = []
    sessions.on_change(seen.append)
    await sessions.current("u1")
    store.versions["u1"] = 1
    sessions.missed()
    assert await sessions.current("u1") == 1
    sessions.users_changed(["u2"])
    assert seen == [None, frozenset({"u2"})]


async def _admin_with_user():
    store, versions = InMemoryAdminStore(), InMemoryTokenVersions()
    sessions = Sessions(versions, RecordingNotifier(), ttl_s=5.0)
    admin = AdminWrites(store, InMemoryResponseCache(), _hash, sessions)
    await admin.create_driver("d1", {"first_name": "A", "last_name": "B", "email": "a@example.com"})
    await admin.create_driver("d2", {"first_name": "C", "last_name": "D", "email": "c@example.com"})
    user = await admin.create_user(username="ann", password="old-password", role="driver", driver_id="d1")
    return admin, sessions, str(user["user_id"])


@pytest.mark.parametrize("changes", [{"is_active": False}, {"role": "admin", "driver_id": None},
                                     {"driver_id": "d2"}, {"password": "new-password"}])
async def test_each_revoking_admin_change_revokes_the_users_tokens(changes):
    admin, sessions, user_id = await _admin_with_user()
    assert await sessions.revocation(user_id, 0) is None
    assert await admin.update_user(uuid.UUID(user_id), changes) is not None
    assert await sessions.revocation(user_id, 0) is not None


async def test_deleting_a_login_revokes_and_other_changes_do_not():
    admin, sessions, user_id = await _admin_with_user()
    await admin.update_user(uuid.UUID(user_id), {})
    assert await sessions.revocation(user_id, 0) is None
    assert await admin.delete_user(uuid.UUID(user_id), by_user_id="someone-else")
    assert await sessions.revocation(user_id, 0) is not None
