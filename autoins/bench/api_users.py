"""Locust users for `autoins bench api` (run by locust in a subprocess: gevent must not meet Ray/asyncio).

`PlanUser` is the plan's §11 user (tests/performance/locustfile.py) plus one no-op request per six
API requests, interleaved, so the no-op's percentiles come from the same seconds under the same
load. `ThroughputUser` hammers the cached GET mix with no think time (FastHttpUser) for the req/s
phase. Exact response times (float ms; locust's own stats round to whole ms below 100 ms) are
collected per request name and written as JSON to `$AUTOINS_BENCH_TIMINGS` when locust quits.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict

from locust import FastHttpUser, HttpUser, between, constant, events, task

USERNAME = os.environ.get("AUTOINS_BENCH_USERNAME", "driver0001")
PASSWORD = os.environ.get("AUTOINS_BENCH_PASSWORD", "password0001")
NOOP_PATH = os.environ.get("AUTOINS_BENCH_NOOP_PATH", "/noop/")

_timings: dict[str, list[float]] = defaultdict(list)
_errors: dict[str, int] = defaultdict(int)


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None, **_kw):
    _timings[name].append(float(response_time))
    if exception is not None:
        _errors[name] += 1


@events.quitting.add_listener
def _dump(**_kw) -> None:
    path = os.environ.get("AUTOINS_BENCH_TIMINGS")
    if path:
        with open(path, "w") as out:
            json.dump({"timings": _timings, "errors": _errors}, out)


def _login(client) -> str:
    """A token, honouring 429 + Retry-After: the API checks a few passwords at a time per replica and answers a
    burst of logins (a locust ramp-up) with back-pressure (docs/SECURITY.md §3), which is not a failure."""
    for _ in range(60):
        with client.post("/api/v1/auth/login", json={"username": USERNAME, "password": PASSWORD},
                         name="/api/v1/auth/login", catch_response=True) as response:
            if response.status_code != 429:
                return response.json()["access_token"]
            response.success()
            wait_s = float(response.headers.get("Retry-After", "1"))
        time.sleep(wait_s)  # cooperative: locust runs users under gevent's monkey patching
    raise RuntimeError("login kept answering 429")


class PlanUser(HttpUser):
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {_login(self.client)}"

    @task(3)
    def view_dashboard(self) -> None:
        self.client.get("/api/v1/drivers/me")

    @task(2)
    def view_risk_score(self) -> None:
        self.client.get("/api/v1/risk/me/score")

    @task(1)
    def view_trips(self) -> None:
        self.client.get("/api/v1/drivers/me/trips?page=1&page_size=20")

    @task(1)
    def noop(self) -> None:
        self.client.get(NOOP_PATH, name="noop")


class ThroughputUser(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.client.auth_header = f"Bearer {_login(self.client)}"

    @task(3)
    def view_dashboard(self) -> None:
        self.client.get("/api/v1/drivers/me", headers={"Authorization": self.client.auth_header})

    @task(2)
    def view_risk_score(self) -> None:
        self.client.get("/api/v1/risk/me/score", headers={"Authorization": self.client.auth_header})

    @task(1)
    def view_trips(self) -> None:
        self.client.get("/api/v1/drivers/me/trips?page=1&page_size=20",
                        headers={"Authorization": self.client.auth_header})

    @task(1)
    def noop(self) -> None:
        self.client.get(NOOP_PATH, name="noop")
