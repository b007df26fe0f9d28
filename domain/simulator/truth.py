"""Ground truth: each simulated driver's expected annual claim frequency λ. Pure.

    log λ = log(base)
          + β_z  · z                                          (risk the telematics cannot see)
          + β_km · log(annual_km / km₀)                       (exposure, sub-linear)
          + β_hb · log(harsh_braking_per_100km / hb₀)
          + β_ha · log(harsh_acceleration_per_100km / ha₀)
          + β_hc · (logit(harsh_cornering_prob) − logit(hc₀))
          + β_sp · log(speeding_prob / sp₀)
          + β_sv · log(severe_speeding_prob / sv₀)
          + β_nt · log(night_trip_prob / nt₀)
          + β_ph · log(phone_episodes_per_h / ph₀)

where x₀ is the propensity of the reference driver (z = 0, every noise 0), so that driver has
λ = base exactly. Every term is written in a propensity the trip generator uses, so features detected from the
readings (harsh rates per 100 km, speeding/night/phone shares, annual km) carry the signal; only
the β_z·z part is invisible by design (an irreducible, realistic error).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec
import numpy as np

from domain.simulator.profiles import N_EPS, ZONES, DriverProfile, driver_id, profile_from_latents

_CLAIMS_STREAM = 0xC1A1
# The reference driver: z = 0 and every noise 0. Its λ is `base_claims_per_year`.
REFERENCE_PROFILE = profile_from_latents(0, 0.0, np.zeros(N_EPS), ZONES[0], 0.0, 0.0, False)


class TruthModel(msgspec.Struct, frozen=True, kw_only=True):
    """Coefficients of the log-linear claim frequency model (see module docstring)."""

    base_claims_per_year: float = 0.08
    beta_z: float = 0.10
    beta_km: float = 0.40
    beta_harsh_braking: float = 0.12
    beta_harsh_acceleration: float = 0.05
    beta_harsh_cornering: float = 0.05
    beta_speeding: float = 0.25
    beta_severe_speeding: float = 0.15
    beta_night: float = 0.20
    beta_phone: float = 0.10
    # Share of claims that are crashes a device detects (drives the `crash` reading rate), and the
    # average moving speed used to turn annual km into annual driving hours for that rate.
    detected_crash_share: float = 0.25
    mean_moving_speed_kmh: float = 50.0


DEFAULT_TRUTH = TruthModel()


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def log_claim_frequency(p: DriverProfile, m: TruthModel = DEFAULT_TRUTH) -> float:
    """log λ for profile `p` (λ in expected claims per policy-year). Pure; increasing in z."""
    r = REFERENCE_PROFILE
    return (
        math.log(m.base_claims_per_year)
        + m.beta_z * p.latent_risk_z
        + m.beta_km * math.log(p.annual_km / r.annual_km)
        + m.beta_harsh_braking * math.log(p.harsh_braking_per_100km / r.harsh_braking_per_100km)
        + m.beta_harsh_acceleration * math.log(p.harsh_acceleration_per_100km / r.harsh_acceleration_per_100km)
        + m.beta_harsh_cornering * (_logit(p.harsh_cornering_prob) - _logit(r.harsh_cornering_prob))
        + m.beta_speeding * math.log(p.speeding_prob / r.speeding_prob)
        + m.beta_severe_speeding * math.log(p.severe_speeding_prob / r.severe_speeding_prob)
        + m.beta_night * math.log(p.night_trip_prob / r.night_trip_prob)
        + m.beta_phone * math.log(p.phone_episodes_per_h / r.phone_episodes_per_h)
    )


def claim_frequency(p: DriverProfile, m: TruthModel = DEFAULT_TRUTH) -> float:
    """λ: expected claims per policy-year for profile `p`. Pure."""
    return math.exp(log_claim_frequency(p, m))


def crash_rate_per_driving_h(p: DriverProfile, m: TruthModel = DEFAULT_TRUTH) -> float:
    """Detected-crash hazard per moving hour: λ · crash share / expected annual driving hours."""
    annual_h = p.annual_km / m.mean_moving_speed_kmh
    return claim_frequency(p, m) * m.detected_crash_share / annual_h


class DriverTruth(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the truth table: the latent risk, λ and the propensities behind it."""

    driver_id: str
    driver_no: int
    latent_risk_z: float
    timezone: str
    expected_claims_per_year: float
    annual_km: float
    harsh_braking_per_100km: float
    harsh_acceleration_per_100km: float
    harsh_cornering_prob: float
    speeding_prob: float
    severe_speeding_prob: float
    night_trip_prob: float
    phone_episodes_per_h: float


def truth_row(p: DriverProfile, m: TruthModel = DEFAULT_TRUTH) -> DriverTruth:
    return DriverTruth(
        driver_id=p.driver_id,
        driver_no=p.driver_no,
        latent_risk_z=p.latent_risk_z,
        timezone=p.zone.name,
        expected_claims_per_year=claim_frequency(p, m),
        annual_km=p.annual_km,
        harsh_braking_per_100km=p.harsh_braking_per_100km,
        harsh_acceleration_per_100km=p.harsh_acceleration_per_100km,
        harsh_cornering_prob=p.harsh_cornering_prob,
        speeding_prob=p.speeding_prob,
        severe_speeding_prob=p.severe_speeding_prob,
        night_trip_prob=p.night_trip_prob,
        phone_episodes_per_h=p.phone_episodes_per_h,
    )


class TrueEpisode(msgspec.Struct, frozen=True, kw_only=True):
    """A harsh manoeuvre the simulator planned: what a detector should find (docs/SIMULATOR.md §11).

    `kind` is braking | acceleration | cornering; `start_ms`/`end_ms` bound the manoeuvre (device time);
    `peak_mps2` is its planned peak magnitude (longitudinal plateau, or lateral for a turn).
    `observed` is False when the device recorded nothing over part of it (a GNSS outage or a
    recording cut short in realism mode): no detector can be asked to find it.
    """

    driver_no: int
    trip_no: int
    kind: str
    start_ms: int
    end_ms: int
    peak_mps2: float
    observed: bool = True

    @property
    def driver_id(self) -> str:
        return driver_id(self.driver_no)


def sample_claim_counts(truth: Sequence[DriverTruth], exposure_years: float, seed: int) -> np.ndarray:
    """Observed claim counts ~ Poisson(λ_i · exposure_years), one per row, deterministic for `seed`."""
    if not exposure_years > 0:
        raise ValueError(f"exposure_years must be > 0, got {exposure_years!r}")
    rng = np.random.default_rng([seed, _CLAIMS_STREAM])
    lam = np.array([t.expected_claims_per_year for t in truth], dtype=np.float64)
    return rng.poisson(lam * exposure_years).astype(np.int64)
