"""Acceptance (issue 12): on what a phone records, the harsh detectors find the simulator's true episodes.

Matching rule and figures: docs/DOMAIN.md §4 and `domain.detection_quality`. The before/after table there
comes from `autoins detection-report` (the same `evaluate`, more seeds).
"""

from __future__ import annotations

import pytest

from domain.detection_quality import KINDS, Detected, evaluate, match, quality
from domain.simulator.realism import PHONE
from domain.simulator.truth import TrueEpisode

START_MS = 1_780_000_000_000  # 2026-05-28, a fixed instant: domain code never reads the clock


def _true(kind: str, start_s: float, end_s: float, *, driver_no: int = 1, observed: bool = True) -> TrueEpisode:
    return TrueEpisode(driver_no=driver_no, trip_no=0, kind=kind, start_ms=round(start_s * 1000),
                       end_ms=round(end_s * 1000), peak_mps2=5.0, observed=observed)


def _found(kind: str, start_s: float, end_s: float, *, driver: str = "driver0001", grade: str = "medium") -> Detected:
    return Detected(driver_id=driver, kind=kind, start_ms=round(start_s * 1000), end_ms=round(end_s * 1000),
                    grade=grade, speed_at_start_kmh=50.0)


def test_a_detection_matches_a_true_episode_it_overlaps_within_the_tolerance():
    truth = [_true("braking", 100, 103)]
    assert match([_found("braking", 104.5, 106)], truth, 2_000) == ({0}, {0})
    assert match([_found("braking", 95, 97.9)], truth, 2_000) == (set(), set())
    assert match([_found("acceleration", 101, 102)], truth, 2_000) == (set(), set())
    assert match([_found("braking", 101, 102, driver="driver0002")], truth, 2_000) == (set(), set())


def test_matching_is_one_to_one_so_a_split_episode_costs_precision():
    truth = [_true("cornering", 10, 14)]
    found = [_found("cornering", 10, 12), _found("cornering", 12, 15)]
    q = {k.kind: k for k in quality(found, truth)}["cornering"]
    assert (q.matched_detected, q.detected, q.matched_true, q.true_observed) == (1, 2, 1, 1)
    assert q.precision == 0.5 and q.recall == 1.0


def test_low_grades_do_not_count_and_unobserved_episodes_are_left_out_of_recall():
    truth = [_true("braking", 10, 12), _true("braking", 50, 52, observed=False)]
    found = [_found("braking", 10, 12, grade="low"), _found("braking", 50, 52, grade="high")]
    q = {k.kind: k for k in quality(found, truth)}["braking"]
    assert (q.detected, q.matched_detected, q.true_observed, q.matched_true, q.true_unobserved) == (1, 1, 1, 0, 1)


@pytest.fixture(scope="module")
def phone_report():
    return evaluate(100, 2, 11, start_ms=START_MS, realism=PHONE)


@pytest.mark.parametrize("kind", KINDS)
def test_precision_and_recall_are_at_least_0_9_on_phone_data(phone_report, kind):
    q = phone_report.of(kind)
    print(f"{kind}: precision {q.precision:.3f} recall {q.recall:.3f} ({q.detected} found, {q.true_observed} true)")
    assert q.true_observed >= 60  # enough episodes that the figures mean something
    assert q.precision >= 0.9 and q.recall >= 0.9


def test_false_cornering_from_heading_noise_at_motorway_speed_is_at_most_1_per_100_km(phone_report):
    print(f"{phone_report.false_motorway_cornering} in {phone_report.motorway_km:.0f} km")
    assert phone_report.motorway_km > 1_000
    assert phone_report.false_cornering_per_100km <= 1.0
