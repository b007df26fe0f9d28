"""Password verification under a per-replica cap (docs/SECURITY.md §3): the PasswordCheck port of usecases.login.

One argon2id verify costs ~25 ms of a core (docs/API.md "Auth"); anonymous logins with unknown usernames each cost
one, so ~40 requests/s per core used to saturate the host. Now at most `login_verify_concurrency` verifications
run at once per replica, at most `login_verify_queue` more wait (each up to `login_verify_wait_s`), and the rest
are refused at once (VerifierBusy → 429 with Retry-After) before any Redis, database or argon2 work.

Verifications run on this replica's own threads under SCHED_IDLE (nice 19 where that is refused): a thread of
that class yields the CPU whenever a normal thread wakes up, so under a flood the event loop that answers every
other request is not queued behind argon2. Measured on the 2-core test machine (80 unknown-user logins/s against
two replicas, the authenticated GET's p95): idle ~3 ms; verifier at nice 0 ~16 ms, at nice 10 ~12-25 ms, under
SCHED_IDLE ~7-8 ms (the rest is the flood's own request handling: 80 GETs/s of 404s alone gave ~6 ms). The cost:
when normal work keeps every core busy, logins wait (and answer 429 after `login_verify_wait_s`) rather than
slow every other request down.

SCHED_IDLE orders threads, but two argon2 threads on a 2-core host still take the whole memory bandwidth and the
sibling hyperthread: CI saw the GET p95 under a flood at 2.06 × idle. So each verification is followed, still
holding its slot, by a rest of (1/`login_verify_duty` − 1) times its own duration: with the default 0.5 a
replica's verifier uses at most half a core, and logins answer 429 sooner instead.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from config.logging import get_logger
from deployments.api.auth import check_password
from usecases.ports.login import VerifierBusy

FALLBACK_NICE = 19
RETRY_AFTER_S = 1
_log = get_logger("autoins.passwords")


def _lower_priority() -> None:
    """Thread initializer: Linux applies sched_setscheduler/setpriority to one thread given its native id."""
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError) as error:
        _log.info("password_thread_sched_idle_refused", error=repr(error))
    try:
        os.setpriority(os.PRIO_PROCESS, tid, FALLBACK_NICE)
    except (AttributeError, OSError) as error:  # not Linux, or not permitted: verify at normal priority
        _log.warning("password_thread_priority_unchanged", error=repr(error))


class PasswordVerifier:
    """`slot()` bounds how many verifications run and wait; `verify()` runs one on the low-priority threads.
    Cheap to construct; the threads start on the first verify."""

    def __init__(self, concurrency: int, queue: int, wait_s: float, duty: float = 1.0) -> None:
        self.concurrency, self.queue, self.wait_s, self.duty = concurrency, queue, wait_s, duty
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting = 0
        self._executor: ThreadPoolExecutor | None = None

    @property
    def waiting(self) -> int:
        return self._waiting

    def has_room(self) -> bool:
        """Would `slot()` run or queue now (rather than refuse)? Lets a flood be refused before any I/O."""
        return not self._slots.locked() or self._waiting < self.queue

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if not self._slots.locked():
            await self._slots.acquire()  # free: taken at once, without suspending
        elif not self.has_room():
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
        started = time.perf_counter()
        ok = await asyncio.get_running_loop().run_in_executor(self._executor, check_password, password_hash,
                                                              password)
        if self.duty < 1.0:  # the caller holds the slot: rest so verifications use at most `duty` of a core each
            await asyncio.sleep((time.perf_counter() - started) * (1.0 / self.duty - 1.0))
        return ok

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


class ShedLoginsWhenFull:
    """ASGI middleware: a login that arrives while this replica's verifier has no room is refused (429,
    Retry-After) before FastAPI parses it or the throttle touches Redis, so a flood's refusals cost about what a
    404 costs (the handler would refuse it too, later: VerifierBusy from `slot()`). Sits inside the request guard,
    which has already bounded and read the body."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == self.path:
            resources = getattr(scope["app"].state, "resources", None)
            verifier = getattr(getattr(resources, "login", None), "passwords", None)
            if isinstance(verifier, PasswordVerifier) and not verifier.has_room():
                busy = VerifierBusy(RETRY_AFTER_S)
                response = JSONResponse({"detail": str(busy)}, status_code=429,
                                        headers={"Retry-After": str(busy.retry_after_s)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
