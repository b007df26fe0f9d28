"""The web console's serving (deployments.console.routes): the page, its modules and vendored libraries come from
the API app itself, through the request guard and the platform middleware, with a self-only CSP; nothing on the
page loads from elsewhere; the tile server's origin is allowed only when configured."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from config.settings import Settings
from deployments.api.app import create_app
from deployments.console.routes import STATIC_DIR, content_security_policy, tile_origin


def get(settings: Settings, *paths: str) -> list[httpx.Response]:
    async def fetch() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(fetch())


def test_the_page_its_modules_and_leaflet_are_served_with_a_self_only_policy():
    page, module, leaflet, css = get(Settings(), "/", "/console/js/main.js",
                                     "/console/vendor/leaflet/leaflet-src.esm.js", "/console/console.css")
    for response in (page, module, leaflet, css):
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "connect-src 'self';" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
    assert page.headers["content-type"].startswith("text/html") and 'type="module"' in page.text
    assert "javascript" in module.headers["content-type"]
    assert "Leaflet 1.9.4" in leaflet.text[:200]


def test_the_tile_url_reaches_the_page_and_only_its_origin_is_allowed():
    settings = Settings(console_tile_url="https://{s}.tiles.example.org/{z}/{x}/{y}.png",
                        console_tile_attribution="© example")
    (config,) = get(settings, "/console/config.json")
    assert config.json()["tile_url"] == settings.console_tile_url
    assert "img-src 'self' data: https://*.tiles.example.org;" in config.headers["content-security-policy"]
    assert tile_origin("") is None
    assert "img-src 'self' data:;" in content_security_policy(Settings())


def test_a_tile_url_that_is_not_http_is_refused():
    with pytest.raises(ValueError, match="CONSOLE_TILE_URL"):
        Settings(console_tile_url="javascript:alert(1)")


def test_a_missing_console_file_is_a_404_and_a_body_on_get_is_still_refused():
    (missing,) = get(Settings(), "/console/js/nothing.js")
    assert missing.status_code == 404

    async def with_body() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(Settings()))
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            return await client.request("GET", "/", content=b"{}", headers={"content-type": "application/json"})

    assert asyncio.run(with_body()).status_code == 400


def test_nothing_in_the_console_loads_from_another_origin_or_runs_inline():
    """Offline by construction: no http(s) URL in an import, a src or an href of our own files, no inline script
    or style attribute (the CSP would block them anyway: the browser tests count console errors)."""
    own = [p for p in STATIC_DIR.rglob("*") if p.is_file() and "vendor" not in p.parts]
    assert any(p.name == "main.js" for p in own)
    for path in own:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(?:from|import|src=|href=)\s*\(?["']https?://""", text), path
        if path.suffix == ".html":
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
            assert " style=" not in text, path
    licence = STATIC_DIR / "vendor" / "leaflet" / "LICENSE"
    assert "BSD" in licence.read_text(encoding="utf-8") or "Redistribution" in licence.read_text(encoding="utf-8")
