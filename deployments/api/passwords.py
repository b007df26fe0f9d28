"""Password verification under a per-replica cap (docs/SECURITY.md §3): the PasswordCheck port of usecases.login.

One argon2id verify costs ~25 ms of a core (docs/API.md "Auth"); anonymous logins with unknown usernames each cost
one, so ~40 requests/s per core used to saturate the host. Now at most `login_verify_concurrency` verifications
run at once per replica, at most `login_verify_queue` more wait (each up to `login_verify_wait_s`), and the rest
are refused at once (VerifierBusy → 429 with Retry-After) before any database or argon2 work. Verifications run
on this replica's own threads at a lower CPU priority (nice + NICE_INCREMENT), so under a flood the event loop
that answers every other request keeps its share of the CPU.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from config.logging import get_logger
from deployments.api.auth import check_password
from usecases.ports.login import VerifierBusy

NICE_INCREMENT = 10
RETRY_AFTER_S = 1
_log = get_logger("autoins.passwords")


def _lower_priority() -> None:
    """Thread initializer: Linux applies setpriority to one thread when given its native id."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + NICE_INCREMENT, 19))
    except (AttributeError, OSError) as error:  # not Linux, or not permitted: verify at normal priority
        _log.warning("password_thread_priority_unchanged", error=repr(error))


class PasswordVerifier:
    """`slot()` bounds how many verifications run and wait; `verify()` runs one on the low-priority threads.
    Cheap to construct; the threads start on the first verify."""

    def __init__(self, concurrency: int, queue: int, wait_s: float) -> None:
        self.concurrency, self.queue, self.wait_s = concurrency, queue, wait_s
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting = 0
        self._executor: ThreadPoolExecutor | None = None

    @property
    def waiting(self) -> int:
        return self._waiting

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if not self._slots.locked():
            await self._slots.acquire()  # free: taken at once, without suspending
        elif self._waiting >= self.queue:
            raise VerifierBusy(RETRY_AFTER_S)
        else:
            self._waiting += 1
            try:
                await asyncio.wait_for(self._slots.acquire(), self.wait_s)
            except TimeoutError:
                raise VerifierBusy(RETRY_AFTER_S) from None
            finally:
                self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

    async def verify(self, password_hash: str | None, password: str) -> bool:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="password-verify",
                                                initializer=_lower_priority)
        return await asyncio.get_running_loop().run_in_executor(self._executor, check_password, password_hash,
                                                                password)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
