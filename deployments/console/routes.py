"""The web console (docs/CONSOLE.md), served by the API deployment itself on the same ingress: `GET /` is the
page, `/console/…` its ES modules, styles and vendored libraries (committed files, no build step), and
`GET /console/config.json` the few settings the page needs. Every console response carries the page's
Content-Security-Policy (self only, plus the tile server's origin when `CONSOLE_TILE_URL` names one).

The console holds no authority of its own: it logs in with `POST /api/v1/auth/login` and calls the existing routes
with the user's token, so the API's authorization is the console's.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONSOLE_PREFIX = "/console"


def tile_origin(tile_url: str) -> str | None:
    """The origin a tile URL template loads from, as a CSP source (`{s}` subdomains become `*`); None if empty."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url.replace("{s}", "s-placeholder"))
    host = parts.netloc.replace("s-placeholder", "*")
    return f"{parts.scheme}://{host}" if parts.scheme and host else None


def content_security_policy(settings: Settings) -> str:
    """Self only: scripts, styles, fetches and sockets from this origin (CSP 3's 'self' covers ws:/wss: to the
    same host); images from here, `data:` (Leaflet's CSS) and the tile server; no frames, plugins or <base>."""
    images = " ".join(source for source in ("'self'", "data:", tile_origin(settings.console_tile_url)) if source)
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src {images}; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'; form-action 'self'")


def console_headers(settings: Settings) -> dict[str, str]:
    # no-cache: revalidate on every load (ETag), so a deployed change shows at once and nothing is served stale.
    return {"Content-Security-Policy": content_security_policy(settings), "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-cache"}


def console_config(settings: Settings) -> dict[str, str]:
    return {"tile_url": settings.console_tile_url, "tile_attribution": settings.console_tile_attribution,
            "api_prefix": "/api/v1", "ws_prefix": "/ws"}


class WithHeaders:
    """ASGI wrapper adding fixed headers to every HTTP response of the app it wraps (the static files)."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *self.raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_console(app: FastAPI, settings: Settings) -> None:
    """`GET /`, `GET /console/config.json` and the static mount `/console` (out of the OpenAPI document)."""
    headers = console_headers(settings)
    config = console_config(settings)

    async def console_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=headers)

    async def console_settings() -> JSONResponse:
        return JSONResponse(config, headers=headers)

    note = {"x-access": "the web console (its files under /console/ alike; docs/CONSOLE.md); no data"}
    app.add_api_route("/", console_page, methods=["GET"], include_in_schema=False, openapi_extra=note)
    app.add_api_route(f"{CONSOLE_PREFIX}/config.json", console_settings, methods=["GET"], include_in_schema=False,
                      openapi_extra=note)
    app.mount(CONSOLE_PREFIX, WithHeaders(StaticFiles(directory=STATIC_DIR), headers), name="console")
