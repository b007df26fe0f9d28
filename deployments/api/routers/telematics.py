"""`POST /api/v1/telematics/events`: validate a batch of readings, produce the valid ones to Kafka, answer 202
only after Kafka acknowledged every one of them (DESIGN.md §2.1: an accepted event is stored exactly once).

Body `{"readings": [<wire reading>, …]}` (≤ settings.ingest_max_readings), each validated by
`domain.validation.decode_batch` exactly as the pipeline does, plus the backdating window
(`config.rules.ingest_validation_rules`: older than `ingest_max_backdate_s` → `ts_backdated`). Invalid readings are
rejected per item (index, reason, field, message); the valid ones are produced keyed by driver_id with the
`x-request-id` header. Who (deployments.api.device_auth): a device with `X-Device-Key` posts its driver's readings,
a driver's token their own (where `ingest_driver_tokens` allows), an admin's token any. Authorization is per batch:
a reading of another driver gets 403 and nothing is produced. Kafka slow or down → 503 with Retry-After, and
nothing is claimed. `ingest` is shared with the admin import (routers/admin/telematics_import.py), which has no
backdating window.
"""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from config.logging import get_logger, request_id_var
from config.rules import ingest_validation_rules
from deployments.api.device_auth import IngestCallerDep
from deployments.api.resources import ApiResources
from deployments.api.routers.common import ResourcesDep
from deployments.metrics import platform_metrics
from domain.ingest_caller import IngestCaller
from domain.rules import ValidationRules
from domain.validation import decode_batch, encode_reading
from storage.kafka.producer import ProduceError

RETRY_AFTER_S = 5
BYTES_PER_READING = 16 * 1024  # body cap: ingest_max_readings × this (a reading is ~300 bytes)
_log = get_logger("autoins.ingest")
router = APIRouter(tags=["telematics"])


class _Envelope(msgspec.Struct):
    readings: list[msgspec.Raw]


_DECODE_ENVELOPE = msgspec.json.Decoder(_Envelope).decode

_READING_SCHEMA = {
    "type": "object",
    "required": ["event_id", "driver_id", "ts", "type", "lat", "lon"],
    "properties": {
        "event_id": {"type": "string", "format": "uuid"},
        "driver_id": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
        "ts": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}],
               "description": "RFC 3339 with a timezone, or epoch milliseconds"},
        "type": {"type": "string", "enum": ["position", "ignition_on", "ignition_off", "phone_use", "crash"]},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "speed_kmh": {"type": ["number", "null"], "description": "0..300; unknown: -1, NaN, null or absent"},
        "accel_ms2": {"type": ["number", "null"], "description": "-50..50; unknown: NaN, null or absent"},
        "heading": {"type": ["number", "null"], "description": "0..360; unknown (no course): -1, NaN, null or absent"},
        "speed_limit_kmh": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 300},
        "lateral_accel_ms2": {"type": ["number", "null"], "minimum": -50, "maximum": 50},
        "data": {"type": ["object", "null"]},
    },
}
_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["readings"],
            "properties": {"readings": {"type": "array", "minItems": 1, "items": _READING_SCHEMA}},
        }}},
    },
    "responses": {
        "202": {"description": "Valid readings acknowledged by Kafka; `rejected` lists the others"},
        "400": {"description": "The body is not JSON, or both a device key and a bearer token were sent"},
        "401": {"description": "No credentials, or a malformed, unknown, wrong or revoked device key or token"},
        "403": {"description": "Readings of another driver (nothing was produced), or a driver token where driver "
                               "tokens may not post (setting ingest_driver_tokens)"},
        "413": {"description": "More than ingest_max_readings readings, or the body is too large"},
        "422": {"description": "Wrong shape, empty batch, or no valid reading"},
        "503": {"description": "Kafka did not acknowledge in time; nothing is claimed; retry after Retry-After"},
    },
}

# The admin import: the same body and answers, only an admin calls it, and nothing is too old but retention.
IMPORT_OPENAPI = {**_OPENAPI, "responses": {
    **{k: v for k, v in _OPENAPI["responses"].items() if k not in ("401", "403")},
    "202": {"description": "Valid readings acknowledged by Kafka, however old within retention; `rejected` lists "
                           "the others"},
}}


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status)


def _readings_of(body: bytes) -> list[bytes] | JSONResponse:
    """Each reading's JSON text, or the 4xx that says why the body is not a batch. Strict JSON goes through
    msgspec; a body only the lenient parser reads (a literal NaN: phone apps write it for "unknown", and it is
    a documented sentinel, docs/DOMAIN.md §1) is re-read readings by reading, so validation decides per field."""
    try:
        return [bytes(r) for r in _DECODE_ENVELOPE(body).readings]
    except msgspec.ValidationError as error:
        return _error(422, f"body must be {{\"readings\": [...]}}: {error}")
    except RecursionError:
        return _error(400, "body is not valid JSON: nested too deeply")
    except msgspec.DecodeError as error:
        strict_error = error
    try:
        lenient = json.loads(body)
    except (ValueError, RecursionError):
        return _error(400, f"body is not valid JSON: {strict_error}")
    if not isinstance(lenient, dict) or not isinstance(lenient.get("readings"), list):
        return _error(422, 'body must be {"readings": [...]}')
    return [json.dumps(r).encode() for r in lenient["readings"]]


@router.post("/api/v1/telematics/events", status_code=202, summary="Ingest a batch of readings",
             openapi_extra=_OPENAPI)
async def ingest_events(request: Request, caller: IngestCallerDep, resources: ResourcesDep) -> JSONResponse:
    return await ingest(request, resources, caller, ingest_validation_rules(resources.settings))


async def ingest(
    request: Request, resources: ApiResources, caller: IngestCaller, rules: ValidationRules
) -> JSONResponse:
    """Decode, validate with `rules`, authorize the batch for `caller`, produce; the answer as documented above."""
    settings = resources.settings
    metrics = platform_metrics()
    body = await request.body()
    if len(body) > settings.ingest_max_readings * BYTES_PER_READING:
        return _error(413, f"body is {len(body)} bytes; at most {settings.ingest_max_readings * BYTES_PER_READING}")
    raws = _readings_of(body)
    if isinstance(raws, JSONResponse):
        return raws
    count = len(raws)
    if count == 0:
        return _error(422, "readings must not be empty")
    if count > settings.ingest_max_readings:
        return _error(413, f"{count} readings; at most {settings.ingest_max_readings} per request")
    readings, rejects = decode_batch(raws, int(time.time() * 1000), rules)
    rejected = [{"index": i, "reason": r.reason.value, "field": r.field, "message": r.message} for i, r in rejects]
    if rejected:
        metrics.ingest_readings.inc(len(rejected), tags={"outcome": "rejected"})
    refusal = caller.refusal(r.driver_id for r in readings)
    if refusal is not None:
        return _error(403, refusal)
    if not readings:
        return _error(422, "no valid reading in the batch", accepted=0, rejected=rejected)
    request_id = request_id_var.get() or ""
    try:
        accepted = await resources.ingest_producer().deliver(
            [encode_reading(r) for r in readings], [r.driver_id for r in readings], request_id
        )
    except ProduceError as error:
        metrics.ingest_readings.inc(len(readings), tags={"outcome": "unavailable"})
        _log.warning("ingest_kafka_unavailable", readings=len(readings), error=str(error)[:300])
        return JSONResponse(
            {"detail": f"Kafka did not acknowledge the readings; nothing was accepted, retry in {RETRY_AFTER_S} s",
             "accepted": 0},
            status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    metrics.ingest_readings.inc(accepted, tags={"outcome": "accepted"})
    return JSONResponse({"accepted": accepted, "rejected": rejected}, status_code=202)
