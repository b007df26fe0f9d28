"""Pure ASGI middleware: request id, access log, HTTP metrics, `X-Served-By` (faster than BaseHTTPMiddleware,
and it sees every response, including errors raised below it and WebSocket handshakes).

Per HTTP request: take `X-Request-ID` when it is ≤ 128 characters of [A-Za-z0-9._:-] (else make a new one),
bind it to `config.logging.request_id_var` and structlog's contextvars for the request, echo it on the
response, write one access log line, observe `http_request_duration_seconds` tagged by the ROUTE TEMPLATE
(`/api/v1/drivers/{driver_id}`; "unmatched" for 404s, so a scanner cannot grow the label set).

Inside a Serve replica, Serve's own RequestIdMiddleware runs first: it puts the client's id (or a generated
uuid) into the request headers and appends it to every response, so we do not echo it a second time; the
id we log is the same one unless the client sent an unsafe id (Serve echoes it as sent, we log a new one).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.logging import REQUEST_ID_HEADER, get_logger, new_request_id, request_id_var

_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")
_HEADER = REQUEST_ID_HEADER.lower().encode("latin-1")
SERVED_BY_HEADER = "X-Served-By"
UNMATCHED = "unmatched"
_log = get_logger("autoins.access")


def accepted_request_id(value: str | None) -> str:
    """The client's id if it is safe to log and echo (≤ 128 chars, [A-Za-z0-9._:-]), else a new one."""
    if value and _SAFE_REQUEST_ID.match(value):
        return value
    return new_request_id()


def route_template(scope: Scope) -> str:
    """The matched route's path template (set in the scope by Starlette's router), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class PlatformMiddleware:
    """Outermost middleware of the API. `observe(method, endpoint, status, duration_s)` records the metric;
    `served_by()` names this replica (tests prove which replica answered)."""

    def __init__(self, app: ASGIApp, observe: Callable[[str, str, int, float], None],
                 served_by: Callable[[], str], echo_request_id: Callable[[], bool] = lambda: True,
                 log_access: Callable[[int, float], bool] = lambda _status, _duration_s: True) -> None:
        self.app = app
        self.log_access = log_access
        self.observe = observe
        self.served_by = served_by
        self.echo_request_id = echo_request_id
        self._extra: list[tuple[bytes, bytes]] | None = None  # fixed per process: asked once, on the first request

    def _fixed_headers(self) -> tuple[list[tuple[bytes, bytes]], bool]:
        if self._extra is None:
            self._echo = self.echo_request_id()
            self._extra = [(SERVED_BY_HEADER.lower().encode("latin-1"), self.served_by().encode("latin-1"))]
        return self._extra, self._echo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope.get("headers", ()) if k == _HEADER), None)
        request_id = accepted_request_id(raw.decode("latin-1") if raw is not None else None)
        token = request_id_var.set(request_id)
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        fixed, echo = self._fixed_headers()
        extra = [*fixed, (_HEADER, request_id.encode("latin-1"))] if echo else fixed

        started_response = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            if scope["type"] == "websocket":  # sockets: id in the logs only; their lifetime is not a latency
                await self.app(scope, receive, send)
                return
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # A bug below: log it with the request id and answer a JSON 500 that still carries the id.
            _log.exception("unhandled_error", method=scope.get("method"), path=scope.get("path"))
            if started_response:
                raise
            status = 500
            body = b'{"detail":"internal error","request_id":"%s"}' % request_id.encode()
            await send_with_headers({"type": "http.response.start", "status": 500,
                                     "headers": [(b"content-type", b"application/json"),
                                                 (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
        finally:
            if scope["type"] == "http":
                duration_s = time.perf_counter() - started
                endpoint = route_template(scope)
                self.observe(scope["method"], endpoint, status, duration_s)
                if self.log_access(status, duration_s):
                    _log.info("http_request", method=scope["method"], endpoint=endpoint, path=scope.get("path"),
                              status=status, duration_ms=round(duration_s * 1000, 2))
            structlog.contextvars.reset_contextvars(**bound)
            request_id_var.reset(token)
