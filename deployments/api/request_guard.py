"""Bounded input before any parsing (docs/SECURITY.md §2): a pure ASGI middleware in front of every route.

- **Size, per route class** (`body_rule`): login/auth and admin writes `body_max_bytes_small` (16 KiB), the
  ingest route and the admin import `ingest_max_readings × BYTES_PER_READING`, everything else
  `body_max_bytes_default` (64 KiB).
  A declared `Content-Length` above the limit is refused before the app runs; a streamed (chunked) body is
  counted as it arrives and refused the moment it passes the limit. Both are 413 with a JSON `detail`.
- **Methods without a body** (GET, HEAD, DELETE, OPTIONS) refuse one (400): nothing reads it, and a body
  there only serves request smuggling and cache tricks.
- **JSON only**: a body must be `application/json` (or `+json`), else 415.
- **Plain JSON** on the JSON routes (not ingest nor the import, whose route decodes with msgspec and answers 400
  itself): the body is read here (it is small) and refused with 400 unless it is UTF-8, nested at most
  `MAX_JSON_DEPTH` deep, RFC 8259 JSON (no NaN/Infinity), with no duplicate keys (parsers disagree on which
  one wins) and no NUL characters (PostgreSQL text refuses them). FastAPI then parses a body known to be good.

Starlette/FastAPI's own `max_body_size` answers text/plain when it refuses by Content-Length and only when the
app reads or answers; this one answers JSON and decides before the app is called.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.settings import Settings
from deployments.api.routers.telematics import BYTES_PER_READING

INGEST_PATH = "/api/v1/telematics/events"
IMPORT_PATH = "/api/v1/admin/telematics/import"  # the admin import: ingest's body, ingest's limit
INGEST_PATHS = frozenset({INGEST_PATH, IMPORT_PATH})
AUTH_PREFIX = "/api/v1/auth/"
ADMIN_PREFIX = "/api/v1/admin/"
BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
BODYLESS_ROUTES = frozenset({("POST", "/api/v1/auth/logout")})  # POSTs that act on the caller alone
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_JSON_DEPTH = 32  # our deepest body (an admin write) is 2 levels


@dataclass(frozen=True, slots=True)
class BodyRule:
    """The body a route class accepts: at most `max_bytes`; `check_json`: read and vetted here."""

    route_class: str  # "auth" | "admin_write" | "ingest" | "default"
    max_bytes: int
    check_json: bool = True


def body_rule(settings: Settings, method: str, path: str) -> BodyRule:
    """Which class a request falls in, by method and raw path (before routing, so a 404 is bounded too)."""
    if path in INGEST_PATHS and method == "POST":
        return BodyRule("ingest", settings.ingest_max_readings * BYTES_PER_READING, check_json=False)
    if path.startswith(AUTH_PREFIX) or path.rstrip("/") == AUTH_PREFIX.rstrip("/"):
        return BodyRule("auth", settings.body_max_bytes_small)
    if path.startswith(ADMIN_PREFIX) and method in WRITE_METHODS:
        return BodyRule("admin_write", settings.body_max_bytes_small)
    return BodyRule("default", settings.body_max_bytes_default)


def takes_no_body(method: str, path: str) -> bool:
    return method in BODYLESS_METHODS or (method, path) in BODYLESS_ROUTES


def is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def json_problem(body: bytes) -> str | None:
    """Why `body` is not plain JSON (one line), or None. Pure; cost linear in the body."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"not UTF-8 (byte {error.start})"
    if json_depth(text) > MAX_JSON_DEPTH:
        return f"nested deeper than {MAX_JSON_DEPTH} levels"
    try:
        json.loads(text, object_pairs_hook=_refuse_duplicate_keys, parse_constant=_refuse_constant)
    except _Refused as error:
        return str(error)
    except ValueError as error:  # JSONDecodeError; int() past sys.get_int_max_str_digits
        return str(error).splitlines()[0][:200]
    if "\\u0000" in text.lower():
        return "NUL characters (\\u0000) are not accepted"
    return None


def json_depth(text: str) -> int:
    """The deepest nesting of arrays/objects, brackets inside strings ignored. Fast path: a body with few
    brackets cannot be deep, and counting them runs in C."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


class _Refused(ValueError):
    pass


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Refused(f"duplicate key {key[:40]!r}")
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes its limit: FastAPI re-raises HTTPExceptions met while
    reading a body, so the app's own handler answers the 413 (JSON `detail`); the guard answers it otherwise."""

    def __init__(self, rule: BodyRule) -> None:
        super().__init__(413, detail=too_large(rule))


def too_large(rule: BodyRule) -> str:
    return f"request body larger than {rule.max_bytes} bytes, the limit of {rule.route_class} requests"


class RequestGuard:
    """The middleware. `rule_for(method, path)` is `body_rule` bound to the settings."""

    def __init__(self, app: ASGIApp, rule_for: Callable[[str, str], BodyRule]) -> None:
        self.app = app
        self.rule_for = rule_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        headers = Headers(scope=scope)
        raw_length = headers.get("content-length")
        try:
            length = int(raw_length) if raw_length is not None else None
        except ValueError:
            length = -1
        if length is not None and length < 0:
            await _answer(scope, receive, send, 400, "Content-Length is not a byte count")
            return
        has_body = bool(length) or "transfer-encoding" in headers
        if not has_body:
            await self.app(scope, receive, send)
            return
        if takes_no_body(method, scope["path"]):
            await _answer(scope, receive, send, 400, f"{method} {scope['path']} takes no request body")
            return
        rule = self.rule_for(method, scope["path"])
        if length is not None and length > rule.max_bytes:
            await _answer(scope, receive, send, 413, too_large(rule))
            return
        if not is_json_media_type(headers.get("content-type")):
            await _answer(scope, receive, send, 415, "Content-Type must be application/json")
            return
        if rule.check_json:
            await self._vetted(rule, scope, receive, send)
        else:
            await self._streamed(rule, scope, receive, send)

    async def _vetted(self, rule: BodyRule, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > rule.max_bytes:
                await _answer(scope, receive, send, 413, too_large(rule), close=True)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = json_problem(body)
        if problem is not None:
            await _answer(scope, receive, send, 400, f"body is not acceptable JSON: {problem}", close=False)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _streamed(self, rule: BodyRule, scope: Scope, receive: Receive, send: Send) -> None:
        size = 0
        started = False

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > rule.max_bytes:
                    raise BodyTooLarge(rule)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as error:
            if started:
                raise
            await _answer(scope, receive, send, 413, str(error.detail), close=True)


async def _answer(scope: Scope, receive: Receive, send: Send, status: int, detail: str, *, close: bool = True) -> None:
    # Connection: close when the body was not read: its unread rest must not be taken for the next request.
    response = JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close"} if close else None)
    await response(scope, receive, send)
