"""docs/SECURITY.md §5 is the app's own answer to "who may call what" (deployments.api.route_access), and the
classification it prints is true of the routes."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import iter_route_contexts

from config.settings import Settings
from deployments.api.app import create_app
from deployments.api.route_access import ADMIN, INGEST, LOGIN, OPERATOR, current_table, route_access

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "SECURITY.md"


def test_the_documented_table_is_the_apps_own():
    assert current_table() in DOCUMENT.read_text(encoding="utf-8"), (
        "docs/SECURITY.md §5 is stale: run `python -m deployments.api.route_access --write docs/SECURITY.md`")


def test_every_route_is_in_the_table_once_per_method():
    settings = Settings()
    app = create_app(settings)
    rows = route_access(app, settings)
    expected = {(m, c.path) for c in iter_route_contexts(app.routes) for m in (c.methods or ()) if m != "HEAD"}
    assert {(r.method, r.path) for r in rows} == expected and len(rows) == len(expected)
    assert len(rows) >= 40


def test_the_classification_matches_the_guards():
    settings = Settings()
    who = {(r.method, r.path): r.who for r in route_access(create_app(settings), settings)}
    assert who[("GET", "/metrics")] == OPERATOR
    assert all(w == ADMIN for (_, path), w in who.items() if path.startswith("/api/v1/admin/"))
    assert who[("GET", "/api/v1/drivers/me")] == LOGIN
    assert who[("POST", "/api/v1/telematics/events")] == INGEST
    assert who[("POST", "/api/v1/auth/login")].startswith("anyone; throttled")
    assert who[("GET", "/health/ready")].startswith("anyone; status only")
    public = {path for (_, path), w in who.items() if w.startswith("anyone")}
    assert public == {"/api/v1/auth/login", "/health/live", "/health/ready", "/docs", "/docs/oauth2-redirect",
                      "/redoc", "/openapi.json", "/", "/console/config.json"}
