"""`autoins serve` as an operator runs it: a process of its own that starts Ray, consumes, and stops
cleanly on Ctrl-C (SIGINT) with exit 0 after finishing what is in flight."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from autoins.pipeline import durable_messages
from tests.integration.pipeline_support import drop, key_of, make_migrated_database, produce
from tests.integration.test_pipeline import NOW

pytestmark = pytest.mark.timeout(300)


def test_serve_consumes_and_stops_cleanly_on_sigint(base_settings, kafka_topics, fleet, tmp_path):
    payloads, _ = fleet
    payloads = payloads[:3_000]
    url = asyncio.run(make_migrated_database(base_settings, NOW))
    group = f"serve-{uuid.uuid4().hex[:8]}"
    settings = base_settings.with_overrides(database_url=url, kafka_consumer_group=group, **kafka_topics)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "KAFKA_CONSUMER_GROUP": group,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_topics["kafka_bootstrap_servers"],
        "KAFKA_TOPIC_EVENTS": kafka_topics["kafka_topic_events"],
        "KAFKA_TOPIC_DLQ": kafka_topics["kafka_topic_dlq"],
        "NUM_SHARDS": "1",
        "NUM_PERSISTENCE": "1",
        "RAY_NAMESPACE": f"serve-test-{uuid.uuid4().hex[:6]}",
    }
    env.pop("RAY_ADDRESS", None)
    produce(settings, payloads, [key_of(p) for p in payloads])
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoins.cli", "serve"],
        env=env,
        cwd=tmp_path,  # no .env / stack.env there: the environment above is the whole configuration
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while asyncio.run(durable_messages(settings)) < len(payloads):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "serve did not consume the readings"
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0, output
        assert "stopping the pipeline" in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drop(url)
