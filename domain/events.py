"""Domain events: immutable past-tense facts derived from readings (house habit 3).

Pure data plus JSON helpers. Every event carries `event_id` (uuid5 of its inputs, `domain.ids`),
`driver_id`, `trip_id` and `occurred_at_ms` (device time, epoch ms). The JSON `type` field is the
explicit snake_case tag. Events only grow: a new field gets a default; a breaking change is a new tag
plus an upcaster. `tests/unit/corpus/` holds historical payloads that must keep decoding.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Literal

import msgspec

from domain.risk_assessment import FactorContribution
from domain.trip_summary import TripSummary


class CrashSample(msgspec.Struct, frozen=True, array_like=True):
    """One reading around a crash, compact (a JSON array): [ts_ms, lat, lon, speed_kmh, accel_ms2, heading].
    Speed, acceleration and heading are null when the device did not know them."""

    ts_ms: int
    lat: float | None  # None: the driver's positions are stripped (mileage_only)
    lon: float | None
    speed_kmh: float | None
    accel_ms2: float | None
    heading: float | None


class DomainEventBase(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Fields every event has. `trip_id` is None only for a crash detected outside any trip."""

    event_id: uuid.UUID
    driver_id: str
    trip_id: uuid.UUID | None
    occurred_at_ms: int


class TripStarted(DomainEventBase, frozen=True, kw_only=True, tag="trip_started"):
    """A trip began at `occurred_at_ms` (its first reading). Emitted on ignition or once motion is sustained."""

    start_reason: Literal["ignition_on", "motion"]
    lat: float | None  # None: the driver's positions are stripped (mileage_only)
    lon: float | None


class TripEnded(DomainEventBase, frozen=True, kw_only=True, tag="trip_ended"):
    """A trip ended and counts: `summary` is its aggregate (the `trips` row, the input of features)."""

    summary: TripSummary


class TripDiscarded(DomainEventBase, frozen=True, kw_only=True, tag="trip_discarded"):
    """A trip that was announced ended below both minimums (distance and duration) and does not count."""

    reason: str
    end_reason: str
    start_ms: int
    end_ms: int
    distance_m: float
    duration_s: float


class _HarshEpisode(DomainEventBase, frozen=True, kw_only=True):
    """A debounced episode: consecutive samples past the threshold (with hysteresis) are one event.

    `peak_mps2` is the magnitude (positive) of the strongest sample; `duration_s` = (end_ms − start_ms)/1000
    where `end_ms` is the sample that ended the episode; `lat`/`lon` are where it started. `grade` is the
    severity of the peak (TripRules thresholds, docs/DOMAIN.md §4): only medium and high count as harsh in
    trip summaries and features. Events written before grades existed carry none and decode as "medium"
    (they were all past the old ±3 m/s², 3.5 m/s² lateral thresholds, which is the medium band).
    """

    peak_mps2: float
    duration_s: float
    speed_at_start_kmh: float
    start_ms: int
    end_ms: int
    lat: float | None  # None: the driver's positions are stripped (mileage_only)
    lon: float | None
    grade: Literal["low", "medium", "high"] = "medium"


class HarshBrakingDetected(_HarshEpisode, frozen=True, kw_only=True, tag="harsh_braking_detected"):
    pass


class HarshAccelerationDetected(_HarshEpisode, frozen=True, kw_only=True, tag="harsh_acceleration_detected"):
    pass


class HarshCorneringDetected(_HarshEpisode, frozen=True, kw_only=True, tag="harsh_cornering_detected"):
    """`lateral_source` is `device` (the reading's lateral_accel_ms2) or `heading` (heading rate × speed)."""

    lateral_source: Literal["device", "heading"] = "device"


class SpeedingDetected(DomainEventBase, frozen=True, kw_only=True, tag="speeding_detected"):
    """A speeding episode of at least `speeding_min_duration_s`; `band` is the worst band reached.

    `limit_kmh` is the limit at the sample of `max_excess_kmh`; band seconds are exposure (see DOMAIN.md).
    """

    band: Literal["moderate", "severe"]
    duration_s: float
    max_excess_kmh: float
    limit_kmh: float
    start_ms: int
    end_ms: int
    moderate_s: float = 0.0
    severe_s: float = 0.0


class PhoneUseDetected(DomainEventBase, frozen=True, kw_only=True, tag="phone_use_detected"):
    """Phone handled while moving above `phone_use_min_speed_kmh`; `duration_s` counts moving seconds only."""

    duration_s: float
    start_ms: int
    end_ms: int


class CrashDetected(DomainEventBase, frozen=True, kw_only=True, tag="crash_detected"):
    """A crash reading or |acceleration| ≥ `crash_g`. `pre`/`post` are the readings around it, compact."""

    peak_g: float
    trigger: Literal["crash_reading", "acceleration"]
    lat: float | None  # None: the driver's positions are stripped (mileage_only)
    lon: float | None
    speed_kmh: float | None
    pre: list[CrashSample] = []
    post: list[CrashSample] = []


class RiskScored(DomainEventBase, frozen=True, kw_only=True, tag="risk_scored"):
    """The driver's risk as of the end of trip `trip_id`: `occurred_at_ms` is that trip's end (device time),
    so the same trips and model give the same event whenever scoring runs. Stream `risk:{driver_id}`.

    The model's `RiskAssessment`: `score` 0–100 (lower is safer), rates in expected claims per year,
    `rate` = credibility × model_rate + (1 − credibility) × prior_rate, `top_factors` in log-rate units."""

    model_version: str
    feature_hash: str
    score: float
    band: str
    rate: float
    model_rate: float
    prior_rate: float
    credibility: float
    top_factors: tuple[FactorContribution, ...] = ()
    # Issue 16 item 5: what is needed to recompute the decision. `features` in FEATURE_NAMES order (the model's
    # input, hashed into `feature_hash`); `rules_version` per domain.rules_version. Empty in older events.
    rules_version: str = ""
    features: tuple[float, ...] = ()
    mileage_only: bool = False  # mileage-only inputs, credibility scaled (docs/SCORING.md, "mileage_only")

    @property
    def scored_at_ms(self) -> int:
        """When the score applies: the end of the trip that triggered it (not when scoring ran)."""
        return self.occurred_at_ms


class PremiumForecast(msgspec.Struct, frozen=True, kw_only=True):
    """What the next better band would cost: the score must drop by more than `score_drop_to_better_band`.
    All None in the best band. Money in the quote's currency."""

    better_band: str | None = None
    score_drop_to_better_band: float | None = None
    premium_at_better_band: Decimal | None = None
    saving_at_better_band: Decimal | None = None


class PremiumQuoted(DomainEventBase, frozen=True, kw_only=True, tag="premium_quoted"):
    """The active policy `policy_id` repriced from the `RiskScored` of the same trip and model version
    (domain.pricing: band, per-km part, ±cap vs `previous_premium`, clamp). Money is Decimal (JSON strings),
    annual premiums in `currency`; `previous_premium` None means no cap applied (no usable previous)."""

    policy_id: uuid.UUID
    model_version: str
    score: float
    band: str
    previous_premium: Decimal | None
    premium: Decimal
    raw_premium: Decimal
    currency: str
    annual_km: float
    cap_applied: bool
    clamp_applied: bool
    forecast: PremiumForecast = PremiumForecast()
    # Issue 16 item 5: the policy's tariff the quote used, and the rules version; None / "" in older events.
    base_premium: Decimal | None = None
    per_km_rate: Decimal | None = None
    rules_version: str = ""


class DisputeOpened(DomainEventBase, frozen=True, kw_only=True, tag="dispute_opened"):
    """A driver contests one episode (`episode_id`, a harsh or speeding event) of their trip `trip_id`.
    `occurred_at_ms` is when it was filed (server time: a person's act, not a device's). `adjustment` is what
    accepting it removes from the trip's summary (domain.disputes.episode_adjustment). Stream `risk:{driver_id}`."""

    dispute_id: uuid.UUID
    episode_id: uuid.UUID
    episode_type: str
    reason: str
    opened_by: str
    adjustment: dict[str, float] = {}


class DisputeDecided(DomainEventBase, frozen=True, kw_only=True, tag="dispute_decided"):
    """An admin accepted or rejected dispute `dispute_id` with a note, at `occurred_at_ms` (server time)."""

    dispute_id: uuid.UUID
    decision: Literal["accepted", "rejected"]
    note: str
    decided_by: str


class DisputeRescored(DomainEventBase, frozen=True, kw_only=True, tag="dispute_rescored"):
    """The driver re-scored after dispute `dispute_id` was accepted: the features of the window ending at
    `window_end_ms` (their latest scored trip's end) without the episode, the model version in force, and, with an
    active policy, the premium requoted against the current one (±cap, clamp: domain.pricing). The premium fields
    are None without a policy. `occurred_at_ms` is the decision's time."""

    dispute_id: uuid.UUID
    window_end_ms: int
    model_version: str
    feature_hash: str
    rules_version: str
    features: tuple[float, ...]
    score: float
    band: str
    rate: float
    model_rate: float
    prior_rate: float
    credibility: float
    top_factors: tuple[FactorContribution, ...] = ()
    policy_id: uuid.UUID | None = None
    annual_km: float = 0.0
    base_premium: Decimal | None = None
    per_km_rate: Decimal | None = None
    previous_premium: Decimal | None = None
    premium: Decimal | None = None
    raw_premium: Decimal | None = None
    currency: str | None = None
    cap_applied: bool = False
    clamp_applied: bool = False


class PrivacyModeChanged(DomainEventBase, frozen=True, kw_only=True, tag="privacy_mode_changed"):
    """A driver's consent: positions are kept and shown per `mode` (docs/PRIVACY.md). Stream `privacy:{driver_id}`;
    `occurred_at_ms` is when it was given (server time: a consent is a person's act, not a device reading);
    `changed_by` the user id and `changed_by_role` their role. `trip_id` is None."""

    mode: Literal["full", "private_trips", "mileage_only"]
    previous_mode: Literal["full", "private_trips", "mileage_only"]
    changed_by: str
    changed_by_role: str


class TripMarkedPrivate(DomainEventBase, frozen=True, kw_only=True, tag="trip_marked_private"):
    """The driver withheld trip `trip_id`'s route and positions from every route and feed (its features still
    count in the score). Stream `privacy:{driver_id}`; id derived from the trip, so marking twice is one event."""

    marked_by: str
    marked_by_role: str


class DriverErased(DomainEventBase, frozen=True, kw_only=True, tag="driver_erased"):
    """Personal data of the driver deleted or pseudonymised on request (docs/PRIVACY.md §4); the audit-relevant
    events stay. Counts say what the erasure touched the first time; stream `privacy:{driver_id}`."""

    erased_by: str
    reason: str
    readings_scrubbed: int = 0
    events_scrubbed: int = 0


DomainEvent = (
    TripStarted
    | TripEnded
    | TripDiscarded
    | HarshBrakingDetected
    | HarshAccelerationDetected
    | HarshCorneringDetected
    | SpeedingDetected
    | PhoneUseDetected
    | CrashDetected
    | RiskScored
    | PremiumQuoted
    | PrivacyModeChanged
    | TripMarkedPrivate
    | DriverErased
    | DisputeOpened
    | DisputeDecided
    | DisputeRescored
)

EVENT_TYPES: dict[str, type[DomainEventBase]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        TripStarted,
        TripEnded,
        TripDiscarded,
        HarshBrakingDetected,
        HarshAccelerationDetected,
        HarshCorneringDetected,
        SpeedingDetected,
        PhoneUseDetected,
        CrashDetected,
        RiskScored,
        PremiumQuoted,
        PrivacyModeChanged,
        TripMarkedPrivate,
        DriverErased,
        DisputeOpened,
        DisputeDecided,
        DisputeRescored,
    )
}

_JSON_ENCODER = msgspec.json.Encoder()
_JSON_DECODER = msgspec.json.Decoder(DomainEvent)
_JSON_LIST_DECODER = msgspec.json.Decoder(list[DomainEvent])


def event_type(event: DomainEventBase) -> str:
    """The snake_case tag of an event (`trip_ended`, …), as stored in `domain_events.type`."""
    return event.__struct_config__.tag  # type: ignore[return-value]


def encode_event(event: DomainEventBase) -> bytes:
    """JSON bytes of one event, `type` tag first. Deterministic: same event, same bytes."""
    return _JSON_ENCODER.encode(event)


def decode_event(data: bytes | str) -> DomainEvent:
    """Parse one event from JSON. Unknown fields are ignored (a newer writer), missing ones defaulted."""
    return _JSON_DECODER.decode(data)


def encode_events(events: list[DomainEvent]) -> bytes:
    """JSON array of events."""
    return _JSON_ENCODER.encode(events)


def decode_events(data: bytes | str) -> list[DomainEvent]:
    """Parse a JSON array of events."""
    return _JSON_LIST_DECODER.decode(data)
