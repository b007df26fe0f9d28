"""Disputes and the premium ledger through the whole API (in-process, real PostgreSQL and Redis) and the real score
store: a trip scored and priced, a driver disputes a harsh braking, an admin accepts it, the driver is re-scored
and repriced within the cap, and the ledger shows both decisions; rebuilding the ledger from the log gives the
same rows. Who may do what (a driver only their own trips and ledger; decisions admin-only) and bad input (4xx)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from typer.testing import CliRunner

from autoins.cli import app
from config.rules import rules_in_force
from deployments.api.schemas import Page
from deployments.api.schemas_disputes import DisputeOut, LedgerEntryOut
from domain.features import FEATURE_NAMES, feature_hash
from domain.pricing import band_for
from domain.risk_assessment import RiskAssessment, ScoreRequest
from domain.scoring import EndedTrip
from storage.memory.risk_model import FakeRiskModel
from storage.memory.score_store import RecordingScorePublisher
from storage.postgres.pool import connect, create_pool
from storage.postgres.premium_ledger import stored_ledger, stream_ledger
from storage.postgres.score_store import PostgresScoreStore
from tests.integration.inprocess_api import (
    bearer,
    drop_seeded,
    insert_trip_story,
    insert_trips,
    login,
    running_api,
    seeded_database,
)
from usecases.scoring_round import ScoringRound

A, B = "driver0001", "driver0002"
_BRAKING = FEATURE_NAMES.index("harsh_braking_per_100km")


class BrakingModel(FakeRiskModel):
    """Scores harsh braking: 10 + 4 per episode per 100 km, so removing an episode lowers the score."""

    def __init__(self) -> None:
        super().__init__(model_version="braking-1")

    def _one(self, request: ScoreRequest) -> RiskAssessment:
        score = round(min(100.0, 10.0 + 4.0 * request.features[_BRAKING]), 2)
        return RiskAssessment(driver_id=request.driver_id, model_version=self.model_version,
                              feature_hash=feature_hash(np.asarray(request.features, dtype=np.float64)), score=score,
                              band=band_for(score).name, rate=score / 1000, model_rate=score / 1000, prior_rate=0.05,
                              credibility=0.5)


@pytest.fixture(scope="module")
async def world(base_settings):
    settings = await seeded_database(base_settings, drivers=2)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    trips = {d: (await insert_trips(settings, d, 1, end))[0] for d in (A, B)}
    for driver in (A, B):  # four episodes: braking (high), braking, speeding, braking
        await insert_trip_story(settings, driver, trips[driver], end - timedelta(hours=1), end, 4, 20)
    conn = await connect(settings)
    try:
        await conn.execute("UPDATE trips SET harsh_braking_count = 3, harsh_braking_high_count = 1, "
                           "speeding_moderate_s = 20")
    finally:
        await conn.close()
    model = BrakingModel()
    pool = await create_pool(settings, min_size=1, max_size=2)
    try:
        scoring = ScoringRound(store=PostgresScoreStore(pool), model=model, publisher=RecordingScorePublisher(),
                               window_days=float(settings.scoring_window_days),
                               rules_version=rules_in_force(settings).version)
        await scoring.score([A, B], {t: EndedTrip(d, t, 0, 1) for d, t in trips.items()})
        async with running_api(settings, model) as (_app, client):
            tokens = {name: await login(client, name) for name in (A, B, "admin")}
            yield client, settings, trips, tokens, pool
    finally:
        await pool.close()
        await drop_seeded(settings)


async def _call(world, who, method, path, **kwargs):
    client, _settings, _trips, tokens, _pool = world
    return await client.request(method, path, headers=bearer(tokens[who]), **kwargs)


async def _episodes(world, driver):
    trips = world[2]
    page = (await _call(world, driver, "GET", f"/api/v1/trips/{trips[driver]}/events")).json()
    return page["items"]


async def test_an_accepted_dispute_reprices_within_the_cap_and_the_ledger_shows_both_decisions(world):
    _client, settings, trips, _tokens, pool = world
    before = (await _call(world, A, "GET", "/api/v1/drivers/me/premium-ledger")).json()
    assert before["total"] == 1
    trip_entry = before["items"][0]
    assert (trip_entry["cause"], trip_entry["trip_id"], trip_entry["model_version"]) == ("trip", str(trips[A]),
                                                                                        "braking-1")
    assert trip_entry["rules_version"] == rules_in_force(settings).version and trip_entry["feature_hash"]
    braking = (await _episodes(world, A))[0]
    assert braking["type"] == "harsh_braking" and braking["grade"] == "high"

    opened = await _call(world, A, "POST", f"/api/v1/trips/{trips[A]}/disputes",
                         json={"episode_id": braking["event_id"], "reason": "a child ran onto the road"})
    assert opened.status_code == 201, opened.text
    dispute = DisputeOut.model_validate(opened.json())
    assert (dispute.status, dispute.episode_type) == ("open", "harsh_braking")
    assert dispute.adjustment == {"harsh_braking_count": 1.0, "harsh_braking_high_count": 1.0}
    listed = (await _call(world, "admin", "GET", "/api/v1/admin/disputes", params={"status": "open"})).json()
    assert [d["dispute_id"] for d in listed["items"]] == [str(dispute.dispute_id)]

    decided = await _call(world, "admin", "POST", f"/api/v1/admin/disputes/{dispute.dispute_id}/decision",
                          json={"decision": "accepted", "note": "dashcam footage confirms"})
    assert decided.status_code == 200, decided.text
    assert (decided.json()["status"], decided.json()["note"]) == ("accepted", "dashcam footage confirms")

    after = Page[LedgerEntryOut].model_validate(
        (await _call(world, A, "GET", "/api/v1/drivers/me/premium-ledger")).json())
    assert after.total == 2
    latest = after.items[0]
    assert (latest.cause, latest.dispute_id, latest.trip_id) == ("dispute", dispute.dispute_id, trips[A])
    previous = Decimal(trip_entry["premium"])
    assert latest.previous_premium == previous
    assert latest.premium < previous and latest.score < trip_entry["score"]
    assert abs(latest.premium - previous) <= previous * Decimal("0.15")  # the cap: ±15 % per change
    assert latest.rules_version == trip_entry["rules_version"] and latest.model_version == "braking-1"
    policies = (await _call(world, A, "GET", "/api/v1/policies/me")).json()
    active = next(p for p in policies["items"] if p["status"] == "active")
    assert Decimal(str(active["current_premium"])) == latest.premium
    score = (await _call(world, A, "GET", "/api/v1/risk/me/score")).json()
    assert score["score"] == pytest.approx(latest.score)
    quote = (await _call(world, A, "GET", "/api/v1/policies/me/quote")).json()  # the decision, not a re-pricing
    assert (Decimal(str(quote["premium"])), Decimal(str(quote["previous_premium"]))) == (latest.premium, previous)
    async with pool.acquire() as conn:
        trip = await conn.fetchrow("SELECT harsh_braking_count, harsh_braking_high_count FROM trips WHERE trip_id = $1",
                                   trips[A])
        assert tuple(trip) == (2, 0)  # the episode left the trip's summary: later windows do not count it
        assert await stream_ledger(conn, A) == await stored_ledger(conn, A)  # the log replayed: the same ledger
        assert len(await stored_ledger(conn, A)) == 2
    print(f"\nledger of {A}:")
    for e in reversed(after.items):
        print(f"  seq {e.seq} {e.cause:>13} score {e.score:6.2f} {e.band}  {e.previous_premium} → {e.premium} "
              f"{e.currency} (cap {e.cap_applied}) model {e.model_version} rules {e.rules_version}")

    again = await _call(world, "admin", "POST", f"/api/v1/admin/disputes/{dispute.dispute_id}/decision",
                        json={"decision": "rejected", "note": "changed my mind"})
    assert again.status_code == 409 and "accepted already" in again.text


async def test_a_rejected_dispute_changes_no_premium(world):
    _client, _settings, trips, _tokens, pool = world
    speeding = next(e for e in await _episodes(world, B) if e["type"] == "speeding")
    opened = await _call(world, B, "POST", f"/api/v1/trips/{trips[B]}/disputes",
                         json={"episode_id": speeding["event_id"], "reason": "the limit sign was wrong"})
    assert opened.status_code == 201, opened.text
    assert opened.json()["adjustment"] == {"speeding_moderate_s": 20.0, "speeding_severe_s": 0.0}
    decided = await _call(world, "admin", "POST", f"/api/v1/admin/disputes/{opened.json()['dispute_id']}/decision",
                          json={"decision": "rejected", "note": "the sign is right"})
    assert decided.json()["status"] == "rejected"
    mine = (await _call(world, B, "GET", "/api/v1/drivers/me/disputes")).json()
    assert [(d["status"], d["note"]) for d in mine["items"]] == [("rejected", "the sign is right")]
    async with pool.acquire() as conn:
        assert [e.cause for e in await stored_ledger(conn, B)] == ["trip"]
        assert await conn.fetchval("SELECT speeding_moderate_s FROM trips WHERE trip_id = $1", trips[B]) == 20


async def test_bad_disputes_are_4xx_with_a_message(world):
    trips = world[2]
    episodes = await _episodes(world, B)
    url = f"/api/v1/trips/{trips[B]}/disputes"
    blank = await _call(world, B, "POST", url, json={"episode_id": episodes[1]["event_id"], "reason": "   "})
    assert blank.status_code == 422 and "reason must not be empty" in blank.text
    empty = await _call(world, B, "POST", url, json={"episode_id": episodes[1]["event_id"], "reason": ""})
    assert empty.status_code == 422 and "reason" in empty.text
    unknown = await _call(world, B, "POST", url, json={"episode_id": str(uuid.uuid4()), "reason": "no"})
    assert unknown.status_code == 404 and "episode" in unknown.text
    not_mine = await _call(world, B, "POST", f"/api/v1/trips/{trips[A]}/disputes",
                           json={"episode_id": (await _episodes(world, A))[1]["event_id"], "reason": "no"})
    assert not_mine.status_code == 404 and "trip" in not_mine.text
    no_trip = await _call(world, B, "POST", f"/api/v1/trips/{uuid.uuid4()}/disputes",
                          json={"episode_id": str(uuid.uuid4()), "reason": "no"})
    assert no_trip.status_code == 404
    first = await _call(world, B, "POST", url, json={"episode_id": episodes[1]["event_id"], "reason": "wet road"})
    assert first.status_code == 201, first.text
    twice = await _call(world, B, "POST", url, json={"episode_id": episodes[1]["event_id"], "reason": "wet road"})
    assert twice.status_code == 409 and "disputed already" in twice.text
    dispute = first.json()["dispute_id"]
    blank_note = await _call(world, "admin", "POST", f"/api/v1/admin/disputes/{dispute}/decision",
                             json={"decision": "accepted", "note": " \t"})
    assert blank_note.status_code == 422 and "note must not be empty" in blank_note.text
    odd = await _call(world, "admin", "POST", f"/api/v1/admin/disputes/{dispute}/decision",
                      json={"decision": "maybe", "note": "hm"})
    assert odd.status_code == 422
    missing = await _call(world, "admin", "POST", f"/api/v1/admin/disputes/{uuid.uuid4()}/decision",
                          json={"decision": "accepted", "note": "ok"})
    assert missing.status_code == 404 and "not found" in missing.text
    bad_status = await _call(world, "admin", "GET", "/api/v1/admin/disputes", params={"status": "closed"})
    assert bad_status.status_code == 422


async def test_only_a_trips_own_driver_disputes_it_and_only_admins_decide(world):
    trips = world[2]
    episode = (await _episodes(world, A))[3]["event_id"]
    by_admin = await _call(world, "admin", "POST", f"/api/v1/trips/{trips[A]}/disputes",
                           json={"episode_id": episode, "reason": "on the driver's behalf"})
    assert by_admin.status_code == 404
    listed = (await _call(world, A, "GET", "/api/v1/drivers/me/disputes")).json()
    dispute = listed["items"][0]["dispute_id"]
    for method, path, body in (("GET", "/api/v1/admin/disputes", None),
                               ("GET", f"/api/v1/admin/disputes/{dispute}", None),
                               ("POST", f"/api/v1/admin/disputes/{dispute}/decision",
                                {"decision": "accepted", "note": "self-service"})):
        answer = await _call(world, A, method, path, json=body)
        assert answer.status_code == 403, (method, path, answer.text)
    for path in (f"/api/v1/drivers/{A}/premium-ledger", f"/api/v1/drivers/{A}/disputes"):
        assert (await _call(world, B, "GET", path)).status_code == 404
        assert (await _call(world, A, "GET", path)).status_code == 200
        assert (await _call(world, "admin", "GET", path)).json()["total"] >= 1
    client = world[0]
    assert (await client.get("/api/v1/drivers/me/premium-ledger")).status_code == 401
    assert (await _call(world, "admin", "GET", "/api/v1/drivers/me/premium-ledger")).status_code == 404


def _explain(settings, tmp_path, *args):
    env = {"DATABASE_URL": settings.database_url, "MODELS_DIR": str(tmp_path), "LOG_JSON": "false",
           "COLUMNS": "160"}
    return CliRunner().invoke(app, ["explain", *args], env=env)


def _words(output: str) -> str:
    """The output as words: table borders gone, whitespace runs one space."""
    return " ".join(output.translate({ord(c): " " for c in "│┃"}).split())


def test_explain_prints_the_decision_in_force_and_says_what_cannot_be_recomputed(world, tmp_path):
    """Sync on purpose: the command runs its own event loop. Runs after the accepted dispute above."""
    settings = world[1]
    now = _explain(settings, tmp_path, A)
    assert now.exit_code == 0, now.output
    out = _words(now.output)
    assert "cause dispute" in out and "braking-1" in out and rules_in_force(settings).version in out
    assert "harsh_braking_per_100km 10" in out  # the recorded input, without the disputed episode
    assert "690.00" in out and "600.40" in out  # previous and new premium, recorded and recomputed
    assert "feature hash of the recorded features: same" in out and "premium recomputed: same" in out
    assert "model artifact braking-1 is no longer available" in out and "not reproduced" in out
    trip_end = datetime.now(UTC) - timedelta(minutes=30)  # the trip ended an hour ago, the dispute just now
    then = _words(_explain(settings, tmp_path, A, "--at", trip_end.isoformat()).output)
    assert "cause trip" in then and "harsh_braking_per_100km 15" in then and "cap (±max_change_ratio) applied" in then
    unknown = _explain(settings, tmp_path, "driver9999")
    assert unknown.exit_code == 1 and "unknown driver 'driver9999'" in unknown.output
    bad = _explain(settings, tmp_path, A, "--at", "yesterday")
    assert bad.exit_code == 2 and "is not a time" in bad.output
    early = _explain(settings, tmp_path, A, "--at", "2000-01-01")
    assert early.exit_code == 1 and "has no score decided at or before 2000-01-01" in early.output
