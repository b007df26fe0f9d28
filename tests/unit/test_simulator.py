"""The fleet simulator: determinism, order, physics, trip structure, risk signal and ground truth."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import msgspec
import numpy as np
import pytest

from domain.readings import Reading, ReadingType, WireReading
from domain.simulator import (
    READING_DTYPE,
    ZONES,
    Population,
    SimConfig,
    claim_frequency,
    measure_throughput,
    sample_claim_counts,
    simulate,
    simulate_all,
    to_readings,
    to_wire_json,
    utc_offset_ms,
)
from domain.simulator.profiles import N_EPS, profile_from_latents
from domain.simulator.trips import CRASH, IGNITION_OFF, IGNITION_ON, PHONE_USE, POSITION
from domain.simulator.truth import REFERENCE_PROFILE

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_S = 86_400


@pytest.fixture(scope="module")
def population() -> Population:
    return Population.generate(30, seed=7)


@pytest.fixture(scope="module")
def stream(population: Population) -> np.ndarray:
    return simulate_all(population, START_MS, DAY_S, seed=7)


@pytest.fixture(scope="module")
def by_trip(stream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Readings sorted by (driver, ts) and a mask of the first reading of each trip."""
    rows = stream[np.lexsort((stream["ts_ms"], stream["driver_no"]))]
    changed = (rows["trip_no"][1:] != rows["trip_no"][:-1]) | (rows["driver_no"][1:] != rows["driver_no"][:-1])
    first = np.r_[True, changed]
    return rows, first


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, length) of each run of True in `mask`."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return starts, stops - starts


def _rank(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(np.float64)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_rank(a), _rank(b))[0, 1])


# --- determinism and order -------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes():
    pop = Population.generate(8, seed=3)
    a = list(simulate(pop, START_MS, DAY_S, seed=3, batch_size=5_000))
    b = list(simulate(Population.generate(8, seed=3), START_MS, DAY_S, seed=3, batch_size=5_000))
    assert [x.tobytes() for x in a] == [x.tobytes() for x in b]
    assert to_wire_json(a[0]) == to_wire_json(b[0])


def test_different_seed_gives_different_readings():
    pop = Population.generate(8, seed=3)
    a = simulate_all(pop, START_MS, DAY_S, seed=3)
    b = simulate_all(pop, START_MS, DAY_S, seed=4)
    assert a.tobytes() != b.tobytes()
    assert Population.generate(8, seed=4).profiles != pop.profiles


def test_batches_do_not_change_the_stream(stream, population):
    batches = list(simulate(population, START_MS, DAY_S, seed=7, batch_size=997))
    assert all(len(b) == 997 for b in batches[:-1]) and 0 < len(batches[-1]) <= 997
    assert np.concatenate(batches).tobytes() == stream.tobytes()
    assert all(b.dtype == READING_DTYPE for b in batches)


def test_stream_is_in_global_time_order(stream):
    key = (stream["ts_ms"] << 20) | stream["driver_no"].astype(np.int64)
    assert len(stream) > 50_000
    assert np.all(np.diff(key) > 0)  # (ts_ms, driver_no) strictly increasing


def test_adjacent_windows_partition_a_longer_simulation():
    pop = Population.generate(6, seed=11)
    whole = simulate_all(pop, START_MS, 2 * DAY_S, seed=11)
    first = simulate_all(pop, START_MS, 0.75 * DAY_S, seed=11)
    second = simulate_all(pop, START_MS + int(0.75 * DAY_S * 1000), 1.25 * DAY_S, seed=11)
    parts = np.concatenate([first, second])
    assert np.sort(parts, order=["ts_ms", "driver_no"]).tobytes() == whole.tobytes()


def test_profiles_do_not_depend_on_population_size():
    assert Population.generate(5, seed=2).profiles[:3] == Population.generate(3, seed=2).profiles
    shard = Population.generate(2, seed=2, first_driver_no=4)
    assert shard.profiles == Population.generate(5, seed=2).profiles[3:]
    assert shard.driver_ids == ["driver0004", "driver0005"]


# --- physics and ranges ----------------------------------------------------------------------------


def test_values_stay_in_physical_ranges(stream):
    assert stream["speed_kmh"].min() >= 0 and stream["speed_kmh"].max() <= 300
    assert np.abs(stream["accel_ms2"]).max() <= 50
    assert np.all((stream["lat"] >= -90) & (stream["lat"] <= 90))
    assert np.all((stream["lon"] >= -180) & (stream["lon"] <= 180))
    assert np.all((stream["heading"] >= 0) & (stream["heading"] < 360))
    limits = stream["speed_limit_kmh"]
    assert set(np.unique(limits[~np.isnan(limits)]).tolist()) <= {30, 40, 50, 70, 100, 110, 120, 130}
    lateral = stream["lateral_accel_ms2"]
    assert np.nanmax(np.abs(lateral)) < 10


def test_accel_matches_speed_changes(by_trip):
    rows, first = by_trip
    v = rows["speed_kmh"] / 3.6
    inner = ~first & ~np.r_[first[1:], True]  # has a same-trip neighbour on both sides
    ok = inner & (rows["type"] != CRASH) & (np.r_[rows["type"][1:], 0] != CRASH)
    central = (np.r_[v[2:], 0, 0] - np.r_[0, 0, v[:-2]]) / 2  # (v[k+1] − v[k−1]) / 2 s
    err = np.abs(rows["accel_ms2"][ok] - central[ok])
    assert np.median(err) < 0.15
    assert np.corrcoef(rows["accel_ms2"][ok], central[ok])[0, 1] > 0.9


def test_positions_move_by_speed_along_heading(by_trip):
    rows, first = by_trip
    nxt = ~np.r_[first[1:], True]  # reading k has a same-trip successor
    lat, lon = np.radians(rows["lat"]), np.radians(rows["lon"])
    dlat, dlon = np.diff(lat), np.diff(lon)
    a = np.sin(dlat / 2) ** 2 + np.cos(lat[:-1]) * np.cos(lat[1:]) * np.sin(dlon / 2) ** 2
    step_m = 2 * 6_371_000 * np.arcsin(np.sqrt(a))
    expected = rows["speed_kmh"][:-1] / 3.6
    moving = nxt[:-1] & (expected > 5)
    assert np.median(np.abs(step_m[moving] - expected[moving]) / expected[moving]) < 0.02
    y = np.sin(dlon) * np.cos(lat[1:])
    x = np.cos(lat[:-1]) * np.sin(lat[1:]) - np.sin(lat[:-1]) * np.cos(lat[1:]) * np.cos(dlon)
    bearing = np.degrees(np.arctan2(y, x))
    diff = (bearing - rows["heading"][:-1] + 180) % 360 - 180
    assert np.median(np.abs(diff[moving])) < 1.0


def test_lateral_accel_is_speed_times_heading_rate(by_trip):
    rows, first = by_trip
    has = ~np.isnan(rows["lateral_accel_ms2"])
    inner = ~first & ~np.r_[first[1:], True] & has
    h = np.radians(rows["heading"])
    rate = ((np.r_[h[2:], 0, 0] - np.r_[0, 0, h[:-2]] + np.pi) % (2 * np.pi) - np.pi) / 2
    derived = rows["speed_kmh"] / 3.6 * rate
    turning = inner & (np.abs(derived) > 1.0)
    assert turning.sum() > 100
    assert np.corrcoef(derived[turning], rows["lateral_accel_ms2"][turning])[0, 1] > 0.9


# --- trip structure --------------------------------------------------------------------------------


def test_every_trip_is_bracketed_by_ignition_on_and_off(by_trip):
    rows, first = by_trip
    last = np.r_[first[1:], True]
    assert first.sum() > 50
    assert np.all(rows["type"][first] == IGNITION_ON) and np.all(rows["type"][last] == IGNITION_OFF)
    assert (rows["type"] == IGNITION_ON).sum() == first.sum() == (rows["type"] == IGNITION_OFF).sum()
    assert np.all(rows["speed_kmh"][first] == 0) and np.all(rows["speed_kmh"][last] == 0)
    step = np.diff(rows["ts_ms"])
    assert np.all(step[~first[1:]] == 1000)  # 1 Hz inside a trip
    same_driver = rows["driver_no"][1:] == rows["driver_no"][:-1]
    assert np.all(step[first[1:] & same_driver] >= 5 * 60_000)  # trips never overlap


def test_red_light_stops_hold_zero_speed_with_ignition_on(by_trip):
    rows, first = by_trip
    trip_id = np.cumsum(first)
    stopped = (rows["speed_kmh"] == 0) & (rows["type"] == POSITION)
    starts, lengths = _runs(stopped)
    inner = (trip_id[starts - 1] == trip_id[starts]) & (rows["speed_kmh"][starts - 1] > 0)
    ends = starts + lengths
    inner &= (ends < len(rows)) & (rows["speed_kmh"][np.minimum(ends, len(rows) - 1)] > 0)
    inner &= trip_id[np.minimum(ends, len(rows) - 1)] == trip_id[starts]
    red = lengths[inner & (lengths >= 29)]
    assert len(red) > 20
    assert red.max() <= 122  # 30–120 s, ±1 s of ramp edges
    assert np.all(rows["type"][starts[inner]] == POSITION)


def test_harsh_episodes_last_several_readings(stream):
    braking = (stream["accel_ms2"] <= -3.0) & (stream["type"] != CRASH)
    _, b_len = _runs(braking[np.lexsort((stream["ts_ms"], stream["driver_no"]))])
    _, a_len = _runs((stream["accel_ms2"] >= 3.0)[np.lexsort((stream["ts_ms"], stream["driver_no"]))])
    assert (b_len >= 2).sum() >= 5 and (a_len >= 2).sum() >= 5
    assert stream["accel_ms2"].min() < -4.5 and stream["accel_ms2"].max() > 4.0
    assert np.nanmax(np.abs(stream["lateral_accel_ms2"])) > 4.0  # harsh cornering


def test_speeding_and_phone_use_happen_while_moving(stream):
    over = stream["speed_kmh"] - stream["speed_limit_kmh"]
    assert (over > 10).sum() > 1_000 and (over > 25).sum() > 50
    phone = stream["type"] == PHONE_USE
    assert phone.sum() > 100
    assert np.all(stream["speed_kmh"][phone] > 0)


def test_some_trips_run_at_local_night(stream, population):
    zone_of = {p.driver_no: p.zone for p in population.profiles}
    starts = stream[stream["type"] == IGNITION_ON]
    hours = [
        datetime.fromtimestamp((int(ts) + utc_offset_ms(zone_of[int(d)], int(ts))) / 1000, tz=UTC).hour
        for ts, d in zip(starts["ts_ms"], starts["driver_no"], strict=True)
    ]
    assert any(h >= 22 or h < 5 for h in hours)
    assert sum(7 <= h <= 19 for h in hours) > len(hours) / 2


def test_crash_reading_exceeds_2_5_g_then_the_car_stops():
    pop = Population.generate(10, seed=5)
    rows = simulate_all(pop, START_MS, DAY_S, seed=5, config=SimConfig(crash_rate_scale=20_000.0))
    rows = rows[np.lexsort((rows["ts_ms"], rows["driver_no"]))]
    crashes = np.flatnonzero(rows["type"] == CRASH)
    assert len(crashes) >= 3
    assert np.all(np.abs(rows["accel_ms2"][crashes]) >= 2.5 * 9.80665)
    assert np.all(rows["speed_kmh"][crashes] > 20) and np.all(rows["speed_kmh"][crashes + 1] == 0)
    for k in crashes:
        after = rows[k + 1 :]
        tail = after[(after["trip_no"] == rows["trip_no"][k]) & (after["driver_no"] == rows["driver_no"][k])]
        assert np.all(tail["speed_kmh"] == 0) and tail["type"][-1] == IGNITION_OFF


# --- wire formats ----------------------------------------------------------------------------------


def test_event_ids_are_unique_time_ordered_uuid7(stream):
    sample = stream[:: max(len(stream) // 20_000, 1)]
    ids = [r.event_id for r in to_readings(sample)]
    assert len(set(ids)) == len(ids)
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert [i.int >> 80 for i in ids] == sample["ts_ms"].tolist()


def test_wire_json_decodes_as_wire_reading_and_matches_to_readings(stream):
    batch = stream[:2_000].copy()
    batch["speed_limit_kmh"][0] = np.nan
    batch["lateral_accel_ms2"][1] = np.nan
    payloads = to_wire_json(batch)
    readings = to_readings(batch)
    assert b'"speed_limit_kmh":null' in payloads[0]
    assert b"lateral_accel_ms2" not in payloads[1]
    for raw, r in zip(payloads, readings, strict=True):
        w = msgspec.json.decode(raw, type=WireReading)
        assert isinstance(r, Reading)
        assert (uuid.UUID(w.event_id), w.driver_id, w.ts) == (r.event_id, r.driver_id, r.ts_ms)
        assert ReadingType(w.type) == r.type
        assert (w.lat, w.lon, w.speed_kmh) == (r.lat, r.lon, r.speed_kmh)
        assert (w.accel_ms2, w.heading) == (r.accel_ms2, r.heading)
        assert (w.speed_limit_kmh, w.lateral_accel_ms2) == (r.speed_limit_kmh, r.lateral_accel_ms2)
    assert readings[0].speed_limit_kmh is None and readings[1].lateral_accel_ms2 is None


def test_driver_ids_are_zero_padded_demo_logins(stream):
    ids = {r.driver_id for r in to_readings(stream[:5_000])}
    assert all(len(i) == 10 and i.startswith("driver") and i[6:].isdigit() for i in ids)
    assert Population.generate(1, seed=1).driver_ids == ["driver0001"]


def test_simulate_rejects_bad_arguments(population):
    with pytest.raises(ValueError, match="duration_s"):
        next(simulate(population, START_MS, 0, seed=1))
    with pytest.raises(ValueError, match="start_ms"):
        next(simulate(population, 0, 60, seed=1))
    with pytest.raises(ValueError, match="batch_size"):
        next(simulate(population, START_MS, 60, seed=1, batch_size=0))
    with pytest.raises(ValueError, match="n_drivers"):
        Population.generate(-1, seed=1)


# --- risk signal and ground truth ------------------------------------------------------------------


def test_higher_latent_risk_gives_more_harsh_and_speeding_readings():
    pop = Population.generate(200, seed=1)
    rows = simulate_all(pop, START_MS, DAY_S, seed=1)
    drv, n = rows["driver_no"].astype(np.int64) - 1, len(pop)
    km = np.bincount(drv, weights=rows["speed_kmh"] / 3600.0, minlength=n)
    moving = np.bincount(drv, weights=rows["speed_kmh"] > 1, minlength=n)
    harsh = ((np.abs(rows["accel_ms2"]) >= 3) & (rows["type"] != CRASH)) | (
        np.abs(np.nan_to_num(rows["lateral_accel_ms2"])) >= 3.5
    )
    speeding = rows["speed_kmh"] > rows["speed_limit_kmh"] + 5
    harsh_per_100km = 100 * np.bincount(drv, weights=harsh, minlength=n) / np.maximum(km, 1e-9)
    speeding_share = np.bincount(drv, weights=speeding, minlength=n) / np.maximum(moving, 1)
    z = np.array([p.latent_risk_z for p in pop.profiles])
    rho_harsh = _spearman(z, harsh_per_100km)
    rho_speeding = _spearman(z, speeding_share)
    rho_both = _spearman(z, harsh_per_100km / 100 + speeding_share)
    print(f"Spearman rho vs latent z: harsh readings/100 km {rho_harsh:.3f}, "
          f"speeding share {rho_speeding:.3f}, combined {rho_both:.3f} ({len(rows)} readings)")
    assert rho_harsh > 0.25 and rho_speeding > 0.3 and rho_both > 0.35


def test_truth_lambda_is_monotone_in_latent_risk_for_fixed_noise():
    rng = np.random.default_rng(0)
    for _ in range(20):
        eps = rng.standard_normal(N_EPS)
        lam = [
            claim_frequency(profile_from_latents(1, z, eps, ZONES[0], 51.5, 0.0, True))
            for z in np.linspace(-3, 3, 25)
        ]
        assert np.all(np.diff(lam) > 0)


def test_reference_driver_has_the_base_claim_frequency():
    assert math.isclose(claim_frequency(REFERENCE_PROFILE), 0.08, rel_tol=1e-12)
    lam = np.array([t.expected_claims_per_year for t in Population.generate(2_000, seed=9).truth_table()])
    assert 0.06 < np.median(lam) < 0.11 and lam.min() > 0.002 and lam.max() < 2
    p5, p95 = np.percentile(lam, [5, 95])
    assert 4 < p95 / p5 < 20  # a realistic spread of risk relativities


def test_claim_counts_are_poisson_around_lambda():
    truth = Population.generate(2_000, seed=4).truth_table()
    counts = sample_claim_counts(truth, exposure_years=5.0, seed=1)
    assert counts.tolist() == sample_claim_counts(truth, exposure_years=5.0, seed=1).tolist()
    lam = np.array([t.expected_claims_per_year for t in truth])
    assert abs(counts.sum() - 5 * lam.sum()) < 4 * math.sqrt(5 * lam.sum())


def test_utc_offset_follows_eu_summer_time():
    berlin = next(z for z in ZONES if z.name == "Europe/Berlin")
    london = next(z for z in ZONES if z.name == "Europe/London")
    jan, jul = START_MS, START_MS + 181 * DAY_S * 1000
    assert utc_offset_ms(berlin, jan) == 3_600_000 and utc_offset_ms(berlin, jul) == 7_200_000
    assert utc_offset_ms(london, jan) == 0 and utc_offset_ms(london, jul) == 3_600_000
    switch = int(datetime(2026, 3, 29, 1, tzinfo=UTC).timestamp() * 1000)  # last Sunday of March
    assert utc_offset_ms(berlin, switch - 1) == 3_600_000 and utc_offset_ms(berlin, switch) == 7_200_000


def test_measure_throughput_reports_rates_with_an_injected_clock():
    ticks = iter(range(100))
    report = measure_throughput(20_000, seed=1, n_drivers=10, convert_readings=1_000, clock=lambda: float(next(ticks)))
    assert report["readings"] >= 20_000 and report["wire_json_readings"] == 1_000
    assert report["generate_readings_per_s"] == report["readings"]  # one fake second
    assert report["wire_json_bytes_per_reading"] > 150
