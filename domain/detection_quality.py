"""How well the harsh detectors find the simulator's true episodes: matching, precision, recall. Pure.

`evaluate(...)` simulates a fleet (optionally in a realism mode), folds every driver's readings through
the trip machine, and matches the detected harsh episodes to the simulator's ground truth
(`domain.simulator.truth.TrueEpisode`).

Matching rule (docs/DOMAIN.md §4): a detected episode and a true one match when they are of the same
driver and kind and the detected span [start_ms, end_ms] overlaps the true span widened by
`tolerance_s` on both sides. Matching is one-to-one, greedy in time order (each true episode takes the
earliest unmatched detection that overlaps it). Precision = matched detections / detections; recall =
matched true episodes / true episodes the device observed (an episode inside a GNSS outage or after
a recording stopped is not counted either way). By default only the episodes that score (grade medium
or high) count as detections; `grades` changes that.

False cornering at motorway speed: cornering detections that match no true episode and start on a road
whose limit is ≥ `motorway_limit_kmh` (the simulator plans no harsh turn there), per 100 km driven on
such roads (Σ speed × interval over readings with such a limit).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

import msgspec

from domain.events import DomainEvent, HarshAccelerationDetected, HarshBrakingDetected, HarshCorneringDetected
from domain.readings import Reading
from domain.rules import TripRules
from domain.simulator import Population, simulate, to_readings
from domain.simulator.realism import RealismConfig
from domain.simulator.truth import TrueEpisode
from domain.trip_machine import DriverState, step_many, tick

KINDS = ("braking", "acceleration", "cornering")
_KIND_OF = {HarshBrakingDetected: "braking", HarshAccelerationDetected: "acceleration",
            HarshCorneringDetected: "cornering"}
SCORED_GRADES = ("medium", "high")


class Detected(msgspec.Struct, frozen=True, kw_only=True):
    """A detected harsh episode, reduced to what matching needs."""

    driver_id: str
    kind: str
    start_ms: int
    end_ms: int
    grade: str
    speed_at_start_kmh: float


class KindQuality(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    detected: int
    matched_detected: int
    true_observed: int
    matched_true: int
    true_unobserved: int

    @property
    def precision(self) -> float:
        return self.matched_detected / self.detected if self.detected else 1.0

    @property
    def recall(self) -> float:
        return self.matched_true / self.true_observed if self.true_observed else 1.0


class QualityReport(msgspec.Struct, frozen=True, kw_only=True):
    kinds: tuple[KindQuality, ...]
    motorway_km: float
    false_motorway_cornering: int
    detections_by_grade: dict[str, dict[str, int]]

    @property
    def false_cornering_per_100km(self) -> float:
        return 100.0 * self.false_motorway_cornering / self.motorway_km if self.motorway_km else 0.0

    def of(self, kind: str) -> KindQuality:
        return next(k for k in self.kinds if k.kind == kind)


def detected_of(events: Iterable[DomainEvent]) -> list[Detected]:
    """The harsh episodes among `events` (grade "medium" when an event carries none)."""
    out = []
    for e in events:
        kind = _KIND_OF.get(type(e))
        if kind is not None:
            out.append(Detected(driver_id=e.driver_id, kind=kind, start_ms=e.start_ms, end_ms=e.end_ms,  # type: ignore[attr-defined]
                                grade=getattr(e, "grade", "medium"),
                                speed_at_start_kmh=e.speed_at_start_kmh))  # type: ignore[attr-defined]
    return out


def match(detected: Sequence[Detected], truth: Sequence[TrueEpisode], tolerance_ms: int) -> tuple[set[int], set[int]]:
    """(indices of matched detections, indices of matched true episodes); see the module docstring."""
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, d in enumerate(detected):
        by_key[(d.driver_id, d.kind)].append(i)
    for idx in by_key.values():
        idx.sort(key=lambda i: (detected[i].start_ms, detected[i].end_ms))
    used: set[int] = set()
    matched_true: set[int] = set()
    for j in sorted(range(len(truth)), key=lambda j: truth[j].start_ms):
        t = truth[j]
        lo, hi = t.start_ms - tolerance_ms, t.end_ms + tolerance_ms
        for i in by_key.get((t.driver_id, t.kind), ()):
            d = detected[i]
            if i not in used and d.start_ms <= hi and d.end_ms >= lo:
                used.add(i)
                matched_true.add(j)
                break
    return used, matched_true


def quality(
    detected: Sequence[Detected], truth: Sequence[TrueEpisode], *, tolerance_s: float = 2.0,
    grades: Sequence[str] = SCORED_GRADES,
) -> tuple[KindQuality, ...]:
    """Precision/recall per kind of the detections of `grades` against `truth`."""
    considered = [d for d in detected if d.grade in grades]
    used, matched_true = match(considered, truth, round(tolerance_s * 1000))
    out = []
    for kind in KINDS:
        det = [i for i, d in enumerate(considered) if d.kind == kind]
        tru = [j for j, t in enumerate(truth) if t.kind == kind]
        out.append(KindQuality(
            kind=kind,
            detected=len(det),
            matched_detected=sum(i in used for i in det),
            true_observed=sum(truth[j].observed for j in tru),
            matched_true=sum(j in matched_true and truth[j].observed for j in tru),
            true_unobserved=sum(not truth[j].observed for j in tru),
        ))
    return tuple(out)


def evaluate(
    n_drivers: int, days: float, seed: int, *, start_ms: int, realism: RealismConfig | None,
    rules: TripRules | None = None, tolerance_s: float = 2.0, motorway_limit_kmh: float = 100.0,
    prepare: Callable[[list[Reading]], list[Reading]] | None = None,
) -> QualityReport:
    """Simulate `n_drivers` for `days` from `start_ms`, detect, and match against the truth. Pure.

    `prepare` (optional) transforms each driver's readings before the trip machine sees them (used to
    reproduce an older pipeline, e.g. one that refused readings with unknown fields).
    """
    rules = TripRules() if rules is None else rules
    population = Population.generate(n_drivers, seed)
    zones = {t.driver_id: t.timezone for t in population.truth_table()}
    truth: list[TrueEpisode] = []
    readings: dict[str, list[Reading]] = defaultdict(list)
    for batch in simulate(population, start_ms, days * 86_400, seed, realism=realism, episodes=truth):
        for r in to_readings(batch):
            readings[r.driver_id].append(r)
    events: list[DomainEvent] = []
    motorway_m = 0.0
    motorway_starts: set[tuple[str, int]] = set()
    for driver, rs in readings.items():
        for p, r in itertools.pairwise(rs):
            if r.speed_limit_kmh is not None and r.speed_limit_kmh >= motorway_limit_kmh:
                motorway_starts.add((driver, r.ts_ms))
                if p.speed_kmh is not None and 0 < r.ts_ms - p.ts_ms <= 10_000:
                    motorway_m += p.speed_kmh / 3.6 * (r.ts_ms - p.ts_ms) / 1000.0
        fed = prepare(rs) if prepare is not None else rs
        state = DriverState.initial(driver, zones[driver])
        state, out = step_many(state, fed, rules)
        events += out
        if fed:
            state, out = tick(state, fed[-1].ts_ms + 10 * 86_400_000, rules)
            events += out
    detected = detected_of(events)
    kinds = quality(detected, truth, tolerance_s=tolerance_s)
    cornering = [d for d in detected if d.kind == "cornering"]
    used, _ = match(cornering, [t for t in truth if t.kind == "cornering"], round(tolerance_s * 1000))
    false_motorway = sum(
        1 for i, d in enumerate(cornering) if i not in used and (d.driver_id, d.start_ms) in motorway_starts
    )
    by_grade: dict[str, dict[str, int]] = {k: {"low": 0, "medium": 0, "high": 0} for k in KINDS}
    for d in detected:
        by_grade[d.kind][d.grade] = by_grade[d.kind].get(d.grade, 0) + 1
    return QualityReport(kinds=kinds, motorway_km=motorway_m / 1000.0, false_motorway_cornering=false_motorway,
                         detections_by_grade=by_grade)


def format_report(report: QualityReport) -> str:
    """A few lines for a terminal."""
    lines = [f"{'kind':<13}{'precision':>10}{'recall':>8}{'detected':>10}{'true':>6}{'unobserved':>12}"]
    for k in report.kinds:
        lines.append(f"{k.kind:<13}{k.precision:>10.3f}{k.recall:>8.3f}{k.detected:>10}{k.true_observed:>6}"
                     f"{k.true_unobserved:>12}")
    lines.append(f"false cornering at motorway speed: {report.false_motorway_cornering} in "
                 f"{report.motorway_km:,.0f} km = {report.false_cornering_per_100km:.2f} per 100 km")
    grades = "; ".join(f"{k} " + "/".join(str(v[g]) for g in ("low", "medium", "high"))
                       for k, v in report.detections_by_grade.items())
    lines.append(f"detections low/medium/high: {grades}")
    return "\n".join(lines)
