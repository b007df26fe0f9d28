"""Cross-cutting parts of the API (request ids, HTTP metrics, health, /metrics, the ingest endpoint).

`install_platform(app)` is called once by `deployments.api.app.create_app`.
"""

from __future__ import annotations

from fastapi import FastAPI


def install_platform(app: FastAPI) -> None:
    """Placeholder until the platform work lands (issue 5): adds nothing yet."""
