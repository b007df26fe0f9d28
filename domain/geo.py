"""Small geodesy helpers. Pure functions of their arguments; degrees in, metres and m/s² out."""

from __future__ import annotations

from math import asin, atan2, cos, degrees, radians, sin, sqrt

# Mean Earth radius R1 = (2a + b) / 3 of WGS-84 (IUGG), in metres.
EARTH_RADIUS_M = 6_371_008.8

KMH_TO_MPS = 1000.0 / 3600.0
_RAD_PER_DEG = 0.017453292519943295


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS-84 points given in degrees (spherical model)."""
    p1 = radians(lat1)
    p2 = radians(lat2)
    dp = p2 - p1
    dl = radians(lon2 - lon1)
    s1 = sin(dp * 0.5)
    s2 = sin(dl * 0.5)
    h = s1 * s1 + cos(p1) * cos(p2) * s2 * s2
    return 2.0 * EARTH_RADIUS_M * asin(sqrt(min(1.0, h)))


def heading_delta_deg(from_deg: float, to_deg: float) -> float:
    """Signed smallest turn from one heading to another, in degrees within [-180, 180).

    Handles the wrap: 359° → 1° is +2°, 1° → 359° is −2°.
    """
    return (to_deg - from_deg + 540.0) % 360.0 - 180.0


def lateral_accel_from_heading_mps2(
    from_heading_deg: float, to_heading_deg: float, dt_s: float, speed_kmh: float
) -> float:
    """Centripetal acceleration |ω·v| in m/s² from the heading rate over `dt_s` and the speed.

    Returns 0.0 when `dt_s` is not positive (no rate can be derived).
    """
    if dt_s <= 0.0:
        return 0.0
    omega_rad_s = heading_delta_deg(from_heading_deg, to_heading_deg) * _RAD_PER_DEG / dt_s
    return abs(omega_rad_s * speed_kmh * KMH_TO_MPS)


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north in [0, 360).

    0.0 for identical points (callers check the distance first: a bearing over a few metres is noise).
    """
    p1 = radians(lat1)
    p2 = radians(lat2)
    dl = radians(lon2 - lon1)
    y = sin(dl) * cos(p2)
    x = cos(p1) * sin(p2) - sin(p1) * cos(p2) * cos(dl)
    return degrees(atan2(y, x)) % 360.0


def signed_lateral_from_heading_mps2(
    from_heading_deg: float, to_heading_deg: float, dt_s: float, speed_kmh: float
) -> float:
    """Centripetal acceleration ω·v in m/s², signed (+ = turning right, clockwise), from the heading
    change over `dt_s` and the speed. 0.0 when `dt_s` is not positive."""
    if dt_s <= 0.0:
        return 0.0
    return heading_delta_deg(from_heading_deg, to_heading_deg) * _RAD_PER_DEG / dt_s * speed_kmh * KMH_TO_MPS
