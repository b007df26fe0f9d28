"""Who may call each route, read off the app itself: the table in docs/SECURITY.md §5 is this module's output.

`python -m deployments.api.route_access` prints the table; `--write docs/SECURITY.md` replaces it between the
markers; tests/unit/test_route_access.py fails when the document and the app disagree. Who: found from each
route's dependencies (`require_operator`, `require_admin`, `ingest_caller`, `current_principal`), refined by an
`x-access` note in the route's `openapi_extra` where the answer depends on the caller (readiness details, login
throttling).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from config.settings import Settings
from deployments.api.auth import current_principal, require_admin
from deployments.api.device_auth import ingest_caller
from deployments.api.operator import require_operator
from deployments.api.request_guard import body_rule, takes_no_body

BEGIN, END = "<!-- route-access:begin (python -m deployments.api.route_access --write docs/SECURITY.md) -->", \
    "<!-- route-access:end -->"
OPERATOR = "operator token (open in development on loopback without one)"
ADMIN = "admin"
LOGIN = "driver (own data only) or admin"
ANYONE = "anyone"
DOCS = "anyone; off in production unless API_DOCS_ENABLED"
INGEST = ("device key (its driver's readings only), admin, or driver (own readings only; off outside development "
          "unless INGEST_DRIVER_TOKENS)")


@dataclass(frozen=True, slots=True)
class RouteAccess:
    method: str
    path: str
    who: str
    body: str  # the request guard's class and limit, or "none" for methods that take no body


def _calls(dependant) -> Iterator[Callable]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _who(context) -> str:
    calls = set(_calls(context.dependant))  # the effective route: router-level dependencies included
    noted = (context.openapi_extra or {}).get("x-access")
    if require_operator in calls:
        who = OPERATOR
    elif require_admin in calls:
        who = ADMIN
    elif ingest_caller in calls:
        who = INGEST
    elif current_principal in calls:
        who = LOGIN
    else:
        who = ANYONE
    return f"{who}; {noted}" if noted else who


def route_access(app: FastAPI, settings: Settings) -> list[RouteAccess]:
    rows = []
    docs = {app.docs_url, app.redoc_url, app.openapi_url, app.swagger_ui_oauth2_redirect_url} - {None}
    for context in iter_route_contexts(app.routes):  # FastAPI ≥ 0.137 keeps included routers as a tree
        path = context.path or ""
        for method in sorted(context.methods or ()):
            if method == "HEAD":
                continue
            if takes_no_body(method, path):
                body = "none (400 if sent)"
            else:
                rule = body_rule(settings, method, path)
                body = f"{rule.route_class}: {rule.max_bytes // 1024} KiB"
            api = isinstance(context.original_route, APIRoute)
            who = _who(context) if api else DOCS if path in docs else ANYONE
            rows.append(RouteAccess(method, path, who, body))
    return sorted(rows, key=lambda r: (r.path, r.method))


def render(rows: list[RouteAccess]) -> str:
    lines = [BEGIN, "| Method | Route | Who may call it | Request body |", "|---|---|---|---|"]
    lines += [f"| {r.method} | `{r.path}` | {r.who} | {r.body} |" for r in rows]
    return "\n".join([*lines, END])


def current_table() -> str:
    from deployments.api.app import create_app

    settings = Settings()  # local development: every route, the docs included
    return render(route_access(create_app(settings), settings))


def replace_table(document: str, table: str) -> str:
    start, end = document.index(BEGIN), document.index(END) + len(END)
    return document[:start] + table + document[end:]


if __name__ == "__main__":
    table = current_table()
    if sys.argv[1:2] == ["--write"]:
        path = Path(sys.argv[2])
        path.write_text(replace_table(path.read_text(encoding="utf-8"), table), encoding="utf-8")
    else:
        print(table)
