"""Pure pieces of the API platform: merging Prometheus exports, request ids, route templates, the event
rate, WebSocket message keys and `since` parsing."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from deployments.api.middleware import UNMATCHED, accepted_request_id, route_template
from deployments.metrics import EventRate, discovery_targets, merge_exposition, node_targets
from deployments.websocket import CLOSE_BAD_REQUEST, Closed, SeenKeys, message_key, parse_since, replay

NODE_A = """# HELP ray_http_request_duration_seconds HTTP request duration
# TYPE ray_http_request_duration_seconds histogram
ray_http_request_duration_seconds_bucket{replica="a",le="0.1"} 1.0
ray_http_request_duration_seconds_count{replica="a"} 1.0
ray_http_request_duration_seconds_sum{replica="a"} 0.05
# HELP ray_cache_hits_total Cache hits
# TYPE ray_cache_hits_total counter
ray_cache_hits_total{cache_type="l1",replica="a"} 3.0
"""
NODE_B = """# HELP ray_cache_hits_total Cache hits
# TYPE ray_cache_hits_total counter
ray_cache_hits_total{cache_type="l1",replica="b"} 2.0
# HELP ray_http_request_duration_seconds HTTP request duration
# TYPE ray_http_request_duration_seconds histogram
ray_http_request_duration_seconds_bucket{replica="b",le="0.1"} 4.0
ray_http_request_duration_seconds_count{replica="b"} 4.0
ray_http_request_duration_seconds_sum{replica="b"} 0.2
"""


def test_merged_exports_have_one_help_and_type_per_family_and_every_replicas_samples():
    merged = merge_exposition([NODE_A, NODE_B])
    assert merged.count("# TYPE ray_http_request_duration_seconds histogram") == 1
    assert merged.count("# HELP ray_cache_hits_total") == 1
    families = {f.name: f for f in text_string_to_metric_families(merged)}  # a strict parser accepts it
    replicas = {s.labels["replica"] for s in families["ray_http_request_duration_seconds"].samples}
    assert replicas == {"a", "b"}
    hits = {s.labels["replica"]: s.value for s in families["ray_cache_hits"].samples}
    assert hits == {"a": 3.0, "b": 2.0}


def test_merging_the_same_export_twice_keeps_each_sample_once():
    assert merge_exposition([NODE_A, NODE_A]) == merge_exposition([NODE_A])


def test_node_targets_list_only_live_nodes_with_an_export_port():
    nodes = [
        {"NodeManagerAddress": "10.0.0.1", "MetricsExportPort": 8080, "alive": True},
        {"NodeManagerAddress": "10.0.0.2", "MetricsExportPort": 8080, "alive": False},
        {"NodeManagerAddress": "10.0.0.3", "MetricsExportPort": 0, "alive": True},
    ]
    assert node_targets(nodes) == ["10.0.0.1:8080"]


def test_discovery_file_is_read_in_prometheus_file_sd_format(tmp_path):
    (tmp_path / "prom_metrics_service_discovery.json").write_text(
        '[{"labels": {"job": "ray"}, "targets": ["10.0.0.1:8080", "10.0.0.2:8080"]}]'
    )
    assert discovery_targets(tmp_path) == ["10.0.0.1:8080", "10.0.0.2:8080"]
    assert discovery_targets(tmp_path / "missing") is None


@pytest.mark.parametrize("value", ["abc-123", "a" * 128, "req.1:2_3"])
def test_a_safe_client_request_id_is_kept(value):
    assert accepted_request_id(value) == value


@pytest.mark.parametrize("value", [None, "", "a" * 129, "bad id", "x\r\ninjected: 1", "ü"])
def test_an_unsafe_or_missing_request_id_is_replaced_by_a_new_one(value):
    new = accepted_request_id(value)
    assert new != value and len(new) == 32


def test_route_template_is_the_matched_routes_path_never_the_raw_path():
    class Route:
        path = "/api/v1/drivers/{driver_id}"

    assert route_template({"route": Route(), "path": "/api/v1/drivers/d1"}) == "/api/v1/drivers/{driver_id}"
    assert route_template({"path": "/wp-admin.php"}) == UNMATCHED


def test_event_rate_is_the_slope_between_samples_and_zero_on_a_reset():
    rate = EventRate()
    assert rate.update(1_000, 100.0) == 0.0
    assert rate.update(4_000, 130.0) == 100.0
    assert rate.update(10, 160.0) == 0.0  # topic recreated: no negative rate


def test_message_keys_order_a_position_before_the_events_it_caused_and_tell_events_apart():
    position = message_key(b'{"type":"position","seq":7,"driver_id":"d"}')
    started = message_key(b'{"type":"trip_started","seq":7,"stream_version":3}')
    harsh = message_key(b'{"type":"harsh_braking_detected","seq":7,"stream_version":4}')
    assert position < started < harsh
    assert message_key(b"not json") is None


def test_seen_keys_drop_repeats_and_forget_the_oldest():
    seen = SeenKeys(limit=2)
    assert seen.first_time((1,)) and not seen.first_time((1,))
    assert seen.first_time((2,)) and seen.first_time((3,))
    assert seen.first_time((1,))  # evicted, so new again


def test_since_is_a_seq_or_the_full_cursor_of_the_last_message():
    assert parse_since(None) is None
    assert parse_since("41").seq == 41 and parse_since("41").after is None
    assert parse_since("41:trip_ended:7").after == (41, 1, 7, "trip_ended")
    for bad in ("yesterday", "41:trip_ended", "41:x:y", "-2"):
        with pytest.raises(Closed) as closed:
            parse_since(bad)
        assert closed.value.code == CLOSE_BAD_REQUEST


def _msg(seq: int, type_: str, version: int = 0) -> bytes:
    return json.dumps({"type": type_, "driver_id": "d", "seq": seq, "stream_version": version}).encode()


def test_resuming_after_a_trip_end_replays_the_score_that_shares_its_seq():
    # the risk stream's versions are low, the trip stream's high: the score still sorts after the trip end
    held = [_msg(99, "position"), _msg(100, "position"), _msg(100, "trip_ended", 57), _msg(100, "risk_scored", 3),
            _msg(100, "premium_quoted", 4), _msg(101, "position")]
    seq_only = [json.loads(m)["type"] for m in replay(held[1:], parse_since("100"))]
    assert seq_only == ["position"]  # seq > 100: what a bare seq promises
    cursor = [json.loads(m)["type"] for m in replay(held, parse_since("100:trip_ended:57"))]
    assert cursor == ["risk_scored", "premium_quoted", "position"]
    assert replay(held, parse_since("101:position:0")) == []
