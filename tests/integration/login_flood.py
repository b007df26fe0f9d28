"""A login flood for tests/integration/test_api_platform.py, run as its own process (its CPU is not the measuring
client's GIL): `python -m tests.integration.login_flood URL RATE START CYCLES ON_S OFF_S` posts logins of fresh
unknown usernames at RATE per second (open loop, at most 256 in flight) during the "on" part of each of CYCLES
cycles that start at START (time.monotonic(), the same clock in every process), then prints each status's count
as JSON. The measuring test reads the same schedule (`phase_at`), so idle and flooded samples interleave and a
slow drift of the shared machine's load falls on both alike."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections import Counter

import httpx

FLOOD_GUARD_S = 0.3  # the flood's first moments belong to neither phase
# After the flood stops, the logins it queued are still checked for up to login_verify_wait_s (2 s): "idle" starts
# once they are done.
IDLE_GUARD_S = 2.5


def phase_at(t: float, start: float, on_s: float, off_s: float, cycles: int) -> str | None:
    """"flood", "idle" or None (before the first cycle, after the last, or in a guard after a switch)."""
    offset = t - start
    if offset < 0 or offset >= cycles * (on_s + off_s):
        return None
    within = offset % (on_s + off_s)
    if within < on_s:
        return "flood" if within >= FLOOD_GUARD_S else None
    return "idle" if within - on_s >= IDLE_GUARD_S else None


async def flood(url: str, rate: float, start: float, cycles: int, on_s: float, off_s: float) -> Counter:
    counts: Counter = Counter()
    in_flight = asyncio.Semaphore(256)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:

        async def one() -> None:
            try:
                response = await client.post("/api/v1/auth/login", json={
                    "username": f"flood-{uuid.uuid4().hex[:12]}", "password": "not-the-password"})
                counts[str(response.status_code)] += 1
            except httpx.HTTPError as error:
                counts[type(error).__name__] += 1
            finally:
                in_flight.release()

        tasks = []
        for cycle in range(cycles):
            on_at = start + cycle * (on_s + off_s)
            await asyncio.sleep(max(0.0, on_at - time.monotonic()))
            sent = 0
            while (elapsed := time.monotonic() - on_at) < on_s:
                while sent < int(elapsed * rate) + 1:
                    if in_flight.locked():
                        counts["skipped"] += 1
                    else:
                        await in_flight.acquire()
                        tasks.append(asyncio.create_task(one()))
                    sent += 1
                await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    return counts


if __name__ == "__main__":
    base_url, per_second, start_at = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    n_cycles, on, off = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
    print(json.dumps(dict(asyncio.run(flood(base_url, per_second, start_at, n_cycles, on, off)))))
