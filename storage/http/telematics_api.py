"""HttpTelematicsApi: the TelematicsApi port over the public REST API (httpx), the client `autoins replay` uses.

A well-behaved client as docs/API.md describes one: every call may be repeated (GETs are pure, ingest stores a
reading once per event id), so a dropped connection or a 503 is tried once more after a pause (a 503's
`Retry-After`, at most `RETRY_AFTER_MAX_S`). What still fails is `ApiUnavailable`; a refused login or token is
`ApiRefused`. Both carry one line a person can act on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import Any

import httpx

from domain.trip_episodes import Episode
from domain.trip_summary import TripSummary
from usecases.ports.telematics_api import ApiRefused, ApiUnavailable, IngestAnswer, ReadingRefusal

INGEST = "/api/v1/telematics/events"
IMPORT = "/api/v1/admin/telematics/import"  # the admin import: no backdating window (docs/SECURITY.md §6)
PAGE_SIZE = 100  # the API's largest page
MAX_PAGES = 50  # 5,000 trips or episodes: far more than one file's readings fall in
RETRY_PAUSE_S = 0.5
RETRY_AFTER_MAX_S = 10.0
BATCH_REFUSALS = {403: "forbidden", 413: "batch_too_large", 422: "invalid_batch"}


class HttpTelematicsApi:
    def __init__(self, base_url: str, token: str, *, timeout_s: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None, ingest_path: str = INGEST) -> None:
        """`ingest_path`: INGEST, or IMPORT for an admin loading readings older than the ingest route's window."""
        self.base_url = base_url.rstrip("/")
        self.ingest_path = ingest_path
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s, transport=transport,
                                         headers={"Authorization": f"Bearer {token}"})

    @classmethod
    async def login(cls, base_url: str, username: str, password: str, *, timeout_s: float = 30.0,
                    transport: httpx.AsyncBaseTransport | None = None, ingest_path: str = INGEST) -> HttpTelematicsApi:
        """`POST /api/v1/auth/login`; ApiRefused on a wrong login (401), a disabled one (403) or too many (429)."""
        async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport) as client:
            response = await _send(client, "POST", "/api/v1/auth/login",
                                   json={"username": username, "password": password})
        if response.status_code != 200:
            raise ApiRefused(f"login as {username!r} refused: HTTP {response.status_code} {_detail(response)}")
        return cls(base_url, response.json()["access_token"], timeout_s=timeout_s, transport=transport,
                   ingest_path=ingest_path)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post_readings(self, readings: Sequence[bytes]) -> IngestAnswer:
        body = b'{"readings":[' + b",".join(readings) + b"]}"  # each line is a JSON object already
        response = await _send(self._client, "POST", self.ingest_path, content=body,
                               headers={"Content-Type": "application/json"})
        status = response.status_code
        payload = _json(response)
        if status == 202 or (status == 422 and "rejected" in payload):
            refused = tuple(ReadingRefusal(int(r["index"]), str(r["reason"]), str(r.get("message", "")))
                            for r in payload.get("rejected", ()))
            return IngestAnswer(accepted=int(payload.get("accepted", 0)), refused=refused)
        if status in BATCH_REFUSALS:
            return IngestAnswer(accepted=0, batch_refusal=BATCH_REFUSALS[status])
        raise self._failure(response)

    async def trips_ending_since(self, driver_id: str, since_ms: int) -> list[TripSummary]:
        trips: list[TripSummary] = []
        async with aclosing(self._items(f"/api/v1/drivers/{driver_id}/trips", unknown_is_empty=True)) as items:
            async for item in items:
                trip = _trip(item)
                if trip.end_ms < since_ms:  # one trip at a time per driver: every older trip ended earlier
                    break
                trips.append(trip)
        return trips

    async def trip_episodes(self, trip_id: uuid.UUID) -> list[Episode]:
        async with aclosing(self._items(f"/api/v1/trips/{trip_id}/events")) as items:
            return [_episode(item) async for item in items]

    async def _items(self, path: str, unknown_is_empty: bool = False) -> AsyncIterator[dict[str, Any]]:
        """The items of a paged list route, page after page (at most MAX_PAGES). With `unknown_is_empty`, a 404
        (a driver the API does not know yet: nothing stored for them) is an empty list."""
        for page in range(1, MAX_PAGES + 1):
            response = await _send(self._client, "GET", path, params={"page": page, "page_size": PAGE_SIZE})
            if response.status_code == 404 and unknown_is_empty:
                return
            if response.status_code != 200:
                raise self._failure(response)
            body = response.json()
            for item in body["items"]:
                yield item
            if page * PAGE_SIZE >= body["total"]:
                return

    def _failure(self, response: httpx.Response) -> Exception:
        what = f"{response.request.method} {response.request.url.path}: HTTP {response.status_code} {_detail(response)}"
        return ApiRefused(what) if response.status_code == 401 else ApiUnavailable(what)


async def _send(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request, sent again once after a dropped connection or a 503; ApiUnavailable if the second fails too."""
    for attempt in (1, 2):
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            if attempt == 2:
                raise ApiUnavailable(f"cannot reach the API at {client.base_url}: {_reason(error)}") from None
            await asyncio.sleep(RETRY_PAUSE_S)
            continue
        if response.status_code != 503 or attempt == 2:
            return response
        await asyncio.sleep(_retry_after_s(response))
    raise AssertionError("unreachable")


def _retry_after_s(response: httpx.Response) -> float:
    try:
        return min(RETRY_AFTER_MAX_S, max(RETRY_PAUSE_S, float(response.headers.get("Retry-After", RETRY_PAUSE_S))))
    except ValueError:
        return RETRY_PAUSE_S


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _detail(response: httpx.Response) -> str:
    detail = _json(response).get("detail")
    return str(detail)[:200] if detail is not None else response.text[:200]


def _reason(error: httpx.HTTPError) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


_SUMMARY_FIELDS = [n for n in TripSummary.__struct_fields__ if n not in ("start_ms", "end_ms")]
_EPISODE_FIELDS = [n for n in Episode.__struct_fields__ if n not in ("event_id", "start_ms", "end_ms")]


def _trip(item: dict[str, Any]) -> TripSummary:
    """A trips-page item (TripOut) as the summary it was projected from; fields it lacks keep their defaults."""
    fields = {n: item[n] for n in _SUMMARY_FIELDS if n in item and n != "trip_id"}
    return TripSummary(trip_id=uuid.UUID(item["trip_id"]), start_ms=_ms(item["start_time"]),
                       end_ms=_ms(item["end_time"]), **fields)


def _episode(item: dict[str, Any]) -> Episode:
    return Episode(event_id=uuid.UUID(item["event_id"]), start_ms=_ms(item["start_time"]), end_ms=_ms(item["end_time"]),
                   **{n: item.get(n) for n in _EPISODE_FIELDS})
