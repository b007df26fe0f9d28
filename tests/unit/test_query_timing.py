"""db_query_duration_seconds labels: the statement's verb and first table, partitions folded, bounded buffers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from storage.postgres.query_timing import MAX_PENDING, QueryTimings, query_labels

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("sql", "labels"), [
    ("SELECT 1", ("select", "-")),
    ("  select d.driver_id FROM drivers d WHERE d.driver_id = $1", ("select", "drivers")),
    ("INSERT INTO domain_events (event_id) SELECT * FROM unnest($1::uuid[])", ("insert", "domain_events")),
    ("UPDATE streams SET version = $2", ("update", "streams")),
    ("DELETE FROM trips WHERE trip_id = $1", ("delete", "trips")),
    ("WITH moved AS (SELECT 1) INSERT INTO consumer_offsets VALUES (1)", ("insert", "consumer_offsets")),
    ("SELECT count(*) FROM telematics_events_2026_05", ("select", "telematics_events")),
    ('SELECT * FROM public."risk_scores" LIMIT 1', ("select", "risk_scores")),
    ("CREATE TEMP TABLE IF NOT EXISTS stage (LIKE telematics_events)", ("create", "stage")),
    ("LISTEN foo", ("other", "-")),
])
def test_a_statement_is_labelled_by_verb_and_first_table(sql, labels):
    assert query_labels(sql) == labels


def test_logged_queries_are_buffered_until_drained_and_bounded():
    timings = QueryTimings()
    timings.logged(SimpleNamespace(query="SELECT * FROM drivers", elapsed=0.002))
    assert timings.drain() == [("select", "drivers", 0.002)]
    assert timings.drain() == []
    for _ in range(MAX_PENDING + 5):
        timings.observe("select", "t", 0.1)
    assert len(timings.pending) == MAX_PENDING and timings.dropped == 5


def test_a_pool_is_available_while_it_has_an_idle_connection_or_room_to_grow():
    from storage.postgres.pool import PoolUse

    assert PoolUse(size=2, idle=0, max_size=6).available == 4
    assert PoolUse(size=6, idle=1, max_size=6).available == 1
    assert PoolUse(size=6, idle=0, max_size=6).available == 0
