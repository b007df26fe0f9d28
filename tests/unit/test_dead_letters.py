"""Dead letters read back, replay headers and replay selection (pure)."""

from __future__ import annotations

import pytest

from domain import dead_letters as dl

pytestmark = pytest.mark.unit


def _record(partition=0, offset=0, reason="invalid_json", extra=()):
    headers = ((dl.REASON, reason.encode()), (dl.SOURCE_TOPIC, b"events"), (dl.SOURCE_PARTITION, b"3"),
               (dl.SOURCE_OFFSET, b"17"), *extra)
    return dl.DeadLetterRecord("events.dlq", partition, offset, 1_700_000_000_000, b"driver-1", b"{", headers)


def test_a_record_reads_its_reason_and_source_from_the_headers():
    record = _record(reason="ts_in_future")
    assert (record.reason, record.source) == ("ts_in_future", "events:3:17")
    assert _record(extra=()).header("nope") is None


def test_a_replay_keeps_the_request_id_and_names_where_in_the_dlq_it_came_from():
    record = _record(1, 42, extra=((dl.REQUEST_ID, b"req-1"), (dl.REPLAY_OF, b"events.dlq:0:3")))
    assert dl.replay_headers(record) == [(dl.REQUEST_ID, b"req-1"), (dl.REPLAY_OF, b"events.dlq:1:42")]


def test_a_dead_letter_carries_the_request_id_and_replay_origin_of_its_record_only():
    headers = [(dl.REQUEST_ID, b"r"), (dl.REPLAY_OF, b"x:0:1"), ("other", b"1"), (dl.REQUEST_ID, None)]
    assert dl.carried_headers(headers) == [(dl.REQUEST_ID, b"r"), (dl.REPLAY_OF, b"x:0:1")]


@pytest.mark.parametrize(("specs", "partitions", "expected"), [
    (["0:5"], 4, {(0, 5)}),
    (["2:5-7", "1:0"], 4, {(2, 5), (2, 6), (2, 7), (1, 0)}),
    (["9"], 1, {(0, 9)}),
    (["3-4"], 1, {(0, 3), (0, 4)}),
])
def test_positions_are_partition_offset_pairs_or_ranges(specs, partitions, expected):
    assert dl.parse_positions(specs, partitions) == expected


@pytest.mark.parametrize(("spec", "partitions", "says"), [
    ("x", 1, "not an offset"),
    ("7", 4, "write it as P:7"),
    ("0:9-3", 4, "ends before it starts"),
    ("5:1", 4, "partitions 0..3"),
])
def test_bad_positions_are_refused_with_what_to_type(spec, partitions, says):
    with pytest.raises(dl.SelectionError, match=says):
        dl.parse_positions([spec], partitions)


def test_select_by_position_or_reason_or_everything_in_dlq_order():
    records = [_record(1, 0, "ts_in_future"), _record(0, 1, "invalid_json"), _record(0, 0, "ts_in_future")]
    assert [r.position for r in dl.select(records)] == [(0, 0), (0, 1), (1, 0)]
    assert [r.position for r in dl.select(records, reasons={"ts_in_future"})] == [(0, 0), (1, 0)]
    assert [r.position for r in dl.select(records, positions={(0, 1)}, reasons={"nope"})] == [(0, 1)]
    assert dl.missing_positions(records, {(0, 1), (3, 3)}) == [(3, 3)]
