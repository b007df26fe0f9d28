"""Multi-node: a head and 2 worker nodes (ray.cluster_utils.Cluster, in a process of its own); the pipeline's
actors are spread over them; one worker node is removed mid-stream; the pipeline moves its actors and finishes
with exact counts and the same domain events as a fault-free run; the API answers again afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import pytest

from autoins.stack.processes import free_tcp_port
from tests.integration.pipeline_support import (
    domain_event_set,
    drop,
    make_migrated_database,
    stored_counts,
)
from tests.integration.test_pipeline import NOW, run_pipeline

pytestmark = pytest.mark.timeout(900)


def test_a_worker_node_lost_mid_stream_moves_its_actors_and_loses_nothing(
    ray_session, base_settings, kafka_topics, fleet, tmp_path
):
    payloads, _ = fleet
    payloads = payloads[:20_000]
    urls = [asyncio.run(make_migrated_database(base_settings, NOW)) for _ in range(2)]
    shape = {"kafka_num_consumers": 2, "num_shards": 2, "num_persistence": 2, "consumer_batch_size": 1_000,
             "db_pool_size": 1, "db_max_overflow": 2, "api_num_replicas": 2, "cache_warm_budget_s": 0}
    try:
        faulty, clean = (
            base_settings.with_overrides(database_url=url, kafka_consumer_group=f"mn-{uuid.uuid4().hex[:8]}",
                                         **kafka_topics, **shape)
            for url in urls
        )
        payloads_file = tmp_path / "payloads.jsonl"
        payloads_file.write_bytes(b"\n".join(payloads))
        secret = {"jwt_secret_key": faulty.jwt_secret_key.get_secret_value()}
        request = {"settings": faulty.model_dump(mode="json") | secret, "payloads_file": str(payloads_file),
                   "http_port": free_tcp_port()}
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        # HAProxy's own listeners must not collide with the ones this test session's Serve holds.
        env |= {"RAY_SERVE_HAPROXY_METRICS_PORT": str(free_tcp_port()),
                "RAY_SERVE_HAPROXY_STATS_PORT": str(free_tcp_port())}
        done = subprocess.run([sys.executable, "-m", "tests.integration.multinode_scenario"], input=json.dumps(request),
                              capture_output=True, text=True, timeout=840, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])

        assert len(set(result["before"].values())) >= 2, f"actors not spread: {result['before']}"
        moved = [name for name, node in result["before"].items() if node == result["victim"]]
        assert moved, f"the removed node held no pipeline actor: {result}"
        assert all(result["after"][name] != result["victim"] for name in moved), result
        assert result["durable_at_loss"] < len(payloads), "the loss must land mid-stream"
        assert result["api_ok_after_loss"], result
        assert result["victim"] not in result["replicas_after"], result

        # The scenario produced every reading to the topic: the fault-free run reads the same log.
        run_pipeline(clean, len(payloads), timeout_s=300)
        counts = asyncio.run(stored_counts(faulty.database_url))
        assert counts["readings"] == counts["distinct_readings"] == len(payloads)
        assert asyncio.run(domain_event_set(faulty.database_url)) == asyncio.run(domain_event_set(clean.database_url))
        print(f"node loss: resumed after {result['resumed_after_s']} s; moved {moved}")
    finally:
        for url in urls:
            drop(url)
