"""The domain's rules as these settings configure them: built here once, for every entrypoint."""

from __future__ import annotations

from config.settings import Settings
from domain.rules import ValidationRules


def validation_rules(settings: Settings) -> ValidationRules:
    """What the API and the pipeline accept: the clock skew and the retention of these settings."""
    return ValidationRules(max_future_skew_s=settings.max_future_skew_s, retention_months=settings.retention_months)
