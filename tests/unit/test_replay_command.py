"""`autoins replay` at its edge, without any service: what it refuses before touching the network (one line, exit
1, no traceback) and how it prints a report."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from rich.console import Console
from typer.testing import CliRunner

from autoins import replay as command
from autoins.cli import app
from domain.trip_episodes import Episode
from domain.trip_summary import TripSummary
from usecases.replay import BadLine, ReplayReport, ReplayTerms, TripFound


@pytest.mark.parametrize(("make", "args", "message"), [
    (None, ["-u", "driver0001", "--password", "p"], "no such file"),
    ("dir", ["-u", "driver0001", "--password", "p"], "is a directory"),
    ("empty", ["-u", "driver0001", "--password", "p"], "holds no readings"),
    ("file", [], "say who posts the readings"),
    ("file", ["--token", "t", "--batch-size", "1000000"], "at most"),
])
def test_what_it_refuses_before_calling_the_api_is_one_line_and_exit_1(tmp_path, make, args, message):
    path = tmp_path / "readings.jsonl"
    if make == "dir":
        path.mkdir()
    elif make == "empty":
        path.write_text("\n  \n", encoding="utf-8")
    elif make == "file":
        path.write_text('{"event_id": "x"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["replay", str(path), *args])
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output


def _report(**changes) -> ReplayReport:
    report = ReplayReport(lines=5, posted=4, accepted=3, bad_lines=[BadLine(2, "not JSON: oops")],
                          refused=Counter({"lat_out_of_range": 1}), refused_lines={"lat_out_of_range": [4]})
    for name, value in changes.items():
        setattr(report, name, value)
    return report


def _printed(report: ReplayReport, monkeypatch) -> str:
    console = Console(width=200, record=True)
    monkeypatch.setattr(command, "console", console)
    command.print_report(report, ReplayTerms(batch_size=10, timeout_s=60.0))
    return console.export_text()


def test_a_report_names_bad_lines_refusals_trips_and_episodes(monkeypatch):
    trip = TripSummary(trip_id=uuid.UUID(int=7), driver_id="driver0001", start_ms=1_780_000_000_000,
                       end_ms=1_780_000_600_000, distance_m=4_200.0, duration_s=600.0, avg_speed_kmh=25.2,
                       max_speed_kmh=70.0, end_reason="parked")
    episode = Episode(event_id=uuid.uuid4(), type="harsh_braking", grade="high", start_ms=1_780_000_100_000,
                      end_ms=1_780_000_102_000, duration_s=2.0, peak_value=4.5, peak_unit="m/s²", lat=45.1,
                      lon=7.1)
    text = _printed(_report(trips=[TripFound(trip, [episode])], settled=True, waited_s=6.0), monkeypatch)
    assert "5 lines: 3 readings accepted, 1 refused by the API, 1 bad lines skipped" in text
    assert "line 2: not JSON: oops" in text and "lat_out_of_range" in text
    assert str(uuid.UUID(int=7)) in text and "4.20" in text and "parked" in text
    assert "harsh_braking" in text and "high" in text and "4.5 m/s²" in text and "45.10000, 7.10000" in text


def test_no_trip_after_the_wait_says_why_it_may_be(monkeypatch):
    text = _printed(_report(waited_s=60.0), monkeypatch)
    assert "no trip holds these readings after 60 s" in text and "log tick after 15 s idle" in text


@pytest.mark.parametrize(("args", "path"), [([], "/api/v1/telematics/events"),
                                            (["--import"], "/api/v1/admin/telematics/import")])
def test_import_posts_through_the_admin_import_and_otherwise_the_ingest_route(tmp_path, monkeypatch, args, path):
    """Readings older than the ingest route's window (docs/SECURITY.md §6) need the admin import."""
    import httpx

    from storage.http import telematics_api

    posted: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        posted.append(request.url.path)
        return httpx.Response(422, json={"detail": "no valid reading in the batch", "accepted": 0,
                                         "rejected": [{"index": 0, "reason": "bad_event_id", "message": "x"}]})

    real = telematics_api.HttpTelematicsApi.__init__

    def with_mock(self, *a, **kw):
        real(self, *a, **{**kw, "transport": httpx.MockTransport(answer)})

    monkeypatch.setattr(telematics_api.HttpTelematicsApi, "__init__", with_mock)
    file = tmp_path / "readings.jsonl"
    file.write_text('{"event_id": "x"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["replay", str(file), "--token", "t", "--api-url", "http://api.test", *args])
    assert posted == [path], result.output
    assert result.exit_code == 1 and "bad_event_id" in result.output
