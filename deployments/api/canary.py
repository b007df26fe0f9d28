"""Weighted routing of a staged rollout (docs/OPERATIONS.md "Staged rollout"), as the API's outermost middleware.

The stable `api` app (route "/") keeps serving everyone while a canary build runs as its own app on the internal
route `/_canary`. During a rollout each stable replica sends the rollout's share of clients (domain/rollout.py:
a stable hash of the credential, else the address) to the canary through the node's Serve ingress, and serves
everyone else itself, with nothing added to their path but one cached lookup. A safe request (GET/HEAD/OPTIONS)
that the canary fails (a 5xx, no answer) is answered again by the stable side, so even canary clients see few
failures while the canary's own metrics still show every one of them; other methods get the canary's answer.

The canary only answers requests that carry the rollout's forwarding token (an HMAC of the JWT secret): `/_canary`
is not a public door around the split, and the client's address the canary sees (X-Forwarded-For, appended here)
can be trusted.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.endpoints import api_base_url
from config.logging import get_logger
from config.settings import Settings
from deployments.api.client_address import client_address
from deployments.api.request_guard import BYTES_PER_READING
from domain.rollout import goes_to_canary
from storage.redis.traffic_split import CachedTrafficSplit

CANARY_ROUTE = "/_canary"
FORWARD_TOKEN_HEADER = b"x-autoins-canary"
ANSWERED_HEADER = b"x-autoins-canary-answer"  # on every answer the canary gives: proof the canary app answered
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOCAL_PATHS = ("/health", "/metrics")  # the stable side's own probes and scrapes: never forwarded
_HOP_BY_HOP = frozenset({b"host", b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer",
                         b"upgrade", b"proxy-authorization", b"proxy-connection", b"content-length"})
_log = get_logger("autoins.rollout")


def forward_token(settings: Settings, canary_app: str) -> str:
    secret = settings.jwt_secret_key.get_secret_value().encode()
    return hmac.new(secret, f"autoins-canary:{canary_app}".encode(), hashlib.sha256).hexdigest()


def client_key(scope: Scope, trusted_proxy_hops: int) -> str:
    """Who the client is, for a sticky side: its credential when it sent one, else its address."""
    for name, value in scope.get("headers", ()):
        if name in (b"authorization", b"x-device-key"):
            return value.decode("latin-1")
    return client_address(scope, trusted_proxy_hops)


class CanaryRouter:
    """Stable side: forward the split's share of clients to the canary. Canary side: refuse unforwarded calls."""

    def __init__(self, app: ASGIApp, *, settings: Settings, redis: Callable[[], object | None],
                 client: httpx.AsyncClient | None = None) -> None:
        self.app = app
        self.settings = settings
        self.is_canary = settings.rollout_role == "canary"
        self.split = CachedTrafficSplit("api", settings.rollout_split_check_s, redis)  # type: ignore[arg-type]
        self._token = forward_token(settings, settings.rollout_app_name)
        self._max_forwarded_body = max(settings.body_max_bytes_default, settings.body_max_bytes_small,
                                       settings.ingest_max_readings * BYTES_PER_READING)
        self._client = client  # made on first use (tests pass one over a mock transport)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif self.is_canary:
            await self._admit_forwarded(scope, receive, send)
        else:
            await self._route(scope, receive, send)

    async def _admit_forwarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = dict(scope.get("headers", ())).get(FORWARD_TOKEN_HEADER, b"").decode("latin-1")
        if not hmac.compare_digest(sent, self._token):
            await _answer(send, 404, b'{"detail":"Not Found"}')
            return
        # Serve hands this app "/_canary/api/..." with root_path "/_canary": every layer below (body limits, login
        # shedding, route templates) knows the API's own paths, so the canary sees exactly what the stable side sees
        root = scope.get("root_path", "")
        path = scope["path"][len(root):] if root and scope["path"].startswith(root) else scope["path"]
        path = path or "/"

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (ANSWERED_HEADER, b"1")]}
            await send(message)

        await self.app({**scope, "path": path, "raw_path": path.encode(), "root_path": ""}, receive, marked)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path.startswith(LOCAL_PATHS) or path.startswith(CANARY_ROUTE):
            await self.app(scope, receive, send)
            return
        split = await self.split.current()
        if split is None or not goes_to_canary(client_key(scope, self.settings.trusted_proxy_hops), split.percent):
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive, self._max_forwarded_body)
        if not complete:  # larger than any route takes: the stable side refuses it with its usual 413
            await self.app(scope, _replay(body, then=receive), send)
            return
        answer = await self._forward(scope, body, split.canary_app)
        if answer is None or (answer.status_code >= 500 and scope["method"] in SAFE_METHODS):
            await self.app(scope, _replay(body), send)  # the stable side answers what the canary failed
            return
        headers = [(k, v) for k, v in answer.headers.raw if k.lower() not in _HOP_BY_HOP | {ANSWERED_HEADER}]
        headers.append((b"content-length", str(len(answer.content)).encode()))
        await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": answer.content})

    async def _forward(self, scope: Scope, body: bytes, canary_app: str) -> httpx.Response | None:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=api_base_url(self.settings) + CANARY_ROUTE,
                                             timeout=self.settings.rollout_forward_timeout_s)
        peer = scope.get("client")
        headers = [(k, v) for k, v in scope.get("headers", ()) if k not in _HOP_BY_HOP and k != FORWARD_TOKEN_HEADER]
        forwarded = [v for k, v in headers if k == b"x-forwarded-for"]
        headers = [(k, v) for k, v in headers if k != b"x-forwarded-for"]
        chain = b", ".join([*forwarded, (peer[0] if peer else "unknown").encode()])
        token = forward_token(self.settings, canary_app).encode()
        headers += [(b"x-forwarded-for", chain), (FORWARD_TOKEN_HEADER, token)]
        url = scope.get("raw_path") or scope["path"].encode()
        if query := scope.get("query_string"):
            url += b"?" + query
        try:
            answer = await self._client.request(scope["method"], url.decode("latin-1"), headers=headers, content=body)
        except httpx.HTTPError as error:
            _log.warning("canary did not answer: the stable side answers", error=str(error)[:200], path=scope["path"])
            return None
        if ANSWERED_HEADER.decode() not in answer.headers:
            # the canary app is gone (removed while this replica's split was still fresh): the ingress gave
            # /_canary/… to the stable app, which ran nothing for it, so any method may be answered here
            return None
        return answer


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The whole body, or the first chunks past `limit` and False (bounded: forwarding buffers the body)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body"):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


def _replay(body: bytes, then: Receive | None = None) -> Receive:
    """A receive that gives `body` again, then what `then` still has (the rest of a body not read), else ends."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then() if then is not None else {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": then is not None}

    return receive


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
