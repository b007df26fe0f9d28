"""A tiny, deterministic reading generator for domain tests (independent of domain/simulator)."""

from __future__ import annotations

import math
import uuid

from domain.events import DomainEventBase, encode_event
from domain.readings import Reading, ReadingType

T0_MS = 1_750_000_000_000  # 2025-06-15T15:06:40Z, a Sunday afternoon in UTC
_NS = uuid.UUID("6a1d3c0e-8a0f-4d55-9a51-2d1c6b8f7e10")
_M_PER_DEG_LAT = 111_195.0


class Drive:
    """Builds one driver's readings: position advances with speed and heading, ids are uuid5(seq)."""

    def __init__(
        self,
        driver_id: str = "drv-1",
        t0_ms: int = T0_MS,
        lat: float = 48.85,
        lon: float = 2.35,
        heading: float = 90.0,
    ) -> None:
        self.driver_id = driver_id
        self.ts_ms = t0_ms
        self.lat = lat
        self.lon = lon
        self.heading = heading
        self.speed_kmh = 0.0
        self.seq = 0
        self.readings: list[Reading] = []

    def add(
        self,
        *,
        dt_s: float = 1.0,
        speed_kmh: float | None = None,
        accel_ms2: float = 0.0,
        heading: float | None = None,
        kind: ReadingType = ReadingType.POSITION,
        limit_kmh: float | None = None,
        lateral_ms2: float | None = None,
        unknown: tuple[str, ...] = (),
        heading_error_deg: float = 0.0,
    ) -> Reading:
        """Advance `dt_s` at the previous speed and heading, then emit a reading with the new values.

        `unknown` names fields the device did not know (sent as None: speed_kmh, accel_ms2, heading);
        `heading_error_deg` is added to the reported heading only (the motion follows the true one)."""
        dist_m = self.speed_kmh / 3.6 * dt_s
        rad = math.radians(self.heading)
        self.lat += dist_m * math.cos(rad) / _M_PER_DEG_LAT
        self.lon += dist_m * math.sin(rad) / (_M_PER_DEG_LAT * math.cos(math.radians(self.lat)))
        self.ts_ms += round(dt_s * 1000)
        if speed_kmh is not None:
            self.speed_kmh = float(speed_kmh)
        if heading is not None:
            self.heading = heading % 360.0
        self.seq += 1
        reading = Reading(
            event_id=uuid.uuid5(_NS, f"{self.driver_id}:{self.seq}"),
            driver_id=self.driver_id,
            ts_ms=self.ts_ms,
            type=kind,
            lat=self.lat,
            lon=self.lon,
            speed_kmh=None if "speed_kmh" in unknown else self.speed_kmh,
            accel_ms2=None if "accel_ms2" in unknown else float(accel_ms2),
            heading=None if "heading" in unknown else (self.heading + heading_error_deg) % 360.0,
            speed_limit_kmh=limit_kmh,
            lateral_accel_ms2=lateral_ms2,
        )
        self.readings.append(reading)
        return reading

    def ignition_on(self, dt_s: float = 1.0) -> Reading:
        return self.add(dt_s=dt_s, speed_kmh=0.0, kind=ReadingType.IGNITION_ON)

    def ignition_off(self, dt_s: float = 1.0) -> Reading:
        return self.add(dt_s=dt_s, speed_kmh=0.0, kind=ReadingType.IGNITION_OFF)

    def cruise(self, seconds: int, speed_kmh: float, **kw: object) -> list[Reading]:
        return [self.add(speed_kmh=speed_kmh, **kw) for _ in range(seconds)]  # type: ignore[arg-type]

    def stop(self, seconds: int) -> list[Reading]:
        return self.cruise(seconds, 0.0)

    def silence(self, seconds: float) -> None:
        """No readings for a while; the vehicle does not move meanwhile."""
        self.ts_ms += round(seconds * 1000)

    def trip(self, seconds: int = 600, speed_kmh: float = 50.0) -> list[Reading]:
        """A plain ignition-on / drive / ignition-off trip."""
        start = len(self.readings)
        self.ignition_on()
        self.cruise(seconds, speed_kmh)
        self.add(speed_kmh=0.0)
        self.ignition_off()
        return self.readings[start:]


def of_type(events: list[DomainEventBase], tag: str) -> list[DomainEventBase]:
    return [e for e in events if e.__struct_config__.tag == tag]


def tags(events: list[DomainEventBase]) -> list[str]:
    return [e.__struct_config__.tag for e in events]  # type: ignore[misc]


def encoded(events: list[DomainEventBase]) -> list[bytes]:
    return [encode_event(e) for e in events]
