"""The ingest route's backdating window (ValidationRules.max_backdate_s, docs/SECURITY.md §6): an older reading is
refused with `ts_backdated`, on the fast and the slow path alike; without a window only retention limits the past,
and a reading before retention is named by retention."""

from __future__ import annotations

import msgspec
import pytest

from config.rules import ingest_validation_rules, validation_rules
from config.settings import Settings
from domain.readings import Reading
from domain.rules import ValidationRules
from domain.validation import RejectReason, decode_batch, decode_reading

NOW_MS = 1_780_000_000_000
WINDOW = ValidationRules(max_backdate_s=3600)


def _wire(ts, **extra) -> bytes:
    return msgspec.json.encode({"event_id": "6f1c2b52-1e8e-4bd5-9a3c-58bbfa9e1b0d", "driver_id": "d1", "ts": ts,
                                "type": "position", "lat": 45.0, "lon": 7.0, **extra})


def test_a_reading_inside_the_window_is_accepted_and_one_older_is_refused_with_the_reason():
    assert isinstance(decode_reading(_wire(NOW_MS - 3_600_000), NOW_MS, WINDOW), Reading)
    refused = decode_reading(_wire(NOW_MS - 3_600_001), NOW_MS, WINDOW)
    assert refused.reason is RejectReason.TS_BACKDATED and refused.field == "ts"
    assert "3600 s" in refused.message and "admin import" in refused.message


def test_the_slow_path_refuses_the_same_reading():
    """An unknown field value only the slow path reads (NaN heading) still meets the window."""
    raw = _wire(NOW_MS - 7_200_000, heading=12345.5).replace(b"12345.5", b"NaN")
    assert decode_reading(raw, NOW_MS, WINDOW).reason is RejectReason.TS_BACKDATED


def test_without_a_window_only_retention_limits_the_past():
    assert isinstance(decode_reading(_wire(NOW_MS - 30 * 86_400_000), NOW_MS, ValidationRules()), Reading)
    assert decode_reading(_wire(0), NOW_MS, WINDOW).reason is RejectReason.TS_BEFORE_RETENTION


def test_a_batch_names_each_backdated_reading_by_index():
    readings, rejects = decode_batch([_wire(NOW_MS), _wire(NOW_MS - 86_400_000), _wire(NOW_MS - 1)], NOW_MS, WINDOW)
    assert len(readings) == 2 and [(i, r.reason) for i, r in rejects] == [(1, RejectReason.TS_BACKDATED)]


def test_the_route_has_the_window_of_its_setting_and_the_pipeline_and_import_have_none():
    settings = Settings(ingest_max_backdate_s=600)
    assert ingest_validation_rules(settings).max_backdate_s == 600
    assert validation_rules(settings).max_backdate_s is None
    assert ingest_validation_rules(settings).retention_months == validation_rules(settings).retention_months


@pytest.mark.parametrize(("environment", "setting", "allowed"), [
    ("development", None, True), ("staging", None, False), ("production", None, False),
    ("production", True, True), ("development", False, False),
])
def test_driver_tokens_post_readings_in_development_only_unless_set(environment, setting, allowed):
    fields = {} if environment == "development" else {
        "jwt_secret_key": "x" * 40, "database_url": "postgresql://u:a-real-one@db/autoins",
        "redis_url": "redis://:a-real-one@redis:6379/0", "model_signing_key": "m" * 40, "allow_plaintext_links": True}
    settings = Settings(environment=environment, ingest_driver_tokens=setting, **fields)
    assert settings.driver_token_ingest is allowed
