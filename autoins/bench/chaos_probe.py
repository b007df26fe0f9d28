"""The API as its users see it during a chaos run: a few client threads that keep asking, and remember what failed.

It cycles through the read routes a driver's app and an operator use (liveness, the driver's profile, score and
trips) at a steady pace over keep-alive connections, as a client behind the load balancer would. A failure is a
transport error or a 5xx; a 4xx is an answer (a driver with no score yet gets 404), and is counted as answered.

Like any well-behaved HTTP client, it asks an idempotent GET once more when the first try failed (docs/API.md):
a keep-alive connection that the ingress closed while reloading its replica set fails the next request sent on
it, which no server-side retry can see. Both counts are kept: failures of the first try (what the ingress let
through) and failures after the retry (what a user of such a client sees).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

ROUTES = ("/health/live", "/api/v1/drivers/me", "/api/v1/risk/me/score", "/api/v1/drivers/me/trips?limit=5")


@dataclass(frozen=True, slots=True)
class ProbeFailure:
    at: float  # time.monotonic()
    route: str
    what: str  # "503" or the transport error's class


@dataclass
class ApiProber:
    base_url: str
    token: str
    clients: int = 4  # concurrent clients, each with its own keep-alive connection
    every_s: float = 0.05  # each client's pause between requests
    timeout_s: float = 10.0
    transport: httpx.BaseTransport | None = None  # tests answer in-process
    sent: int = 0
    failures: list[ProbeFailure] = field(default_factory=list)  # failed twice: the user saw it
    first_try_failures: list[ProbeFailure] = field(default_factory=list)  # failed once, answered on the retry
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for i in range(self.clients):
            thread = threading.Thread(target=self._loop, args=(i,), name=f"chaos-api-probe-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout_s + 5)

    def failed_between(self, start: float, end: float) -> tuple[int, int]:
        """(failed after the retry, failed on the first try) between two time.monotonic() instants."""
        def count(failures: list[ProbeFailure]) -> int:
            return sum(1 for f in failures if start <= f.at <= end)

        return count(self.failures), count(self.failures) + count(self.first_try_failures)

    def summary(self) -> dict:
        return {"sent": self.sent, "failed": len(self.failures),
                "failed_first_try": len(self.failures) + len(self.first_try_failures),
                "failures": _by_kind(self.failures), "first_try_failures": _by_kind(self.first_try_failures)}

    def _loop(self, first: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout_s,
                          transport=self.transport) as client:
            turn = first
            while not self._stop.is_set():
                route = ROUTES[turn % len(ROUTES)]
                turn += 1
                first_try = _get(client, route)
                retried = _get(client, route) if first_try is not None else None
                with self._lock:
                    self.sent += 1
                    if retried is not None:
                        self.failures.append(retried)
                    elif first_try is not None:
                        self.first_try_failures.append(first_try)
                self._stop.wait(self.every_s)


def _get(client: httpx.Client, route: str) -> ProbeFailure | None:
    try:
        response = client.get(route)
    except httpx.HTTPError as error:
        return ProbeFailure(time.monotonic(), route, type(error).__name__)
    return ProbeFailure(time.monotonic(), route, str(response.status_code)) if response.status_code >= 500 else None


def _by_kind(failures: list[ProbeFailure]) -> dict[str, int]:
    out: dict[str, int] = {}
    for failure in failures:
        key = f"{failure.route} {failure.what}"
        out[key] = out.get(key, 0) + 1
    return out
