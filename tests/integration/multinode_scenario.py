"""A node loss mid-stream on a 3-node Ray cluster (ray.cluster_utils.Cluster: a head and 2 worker nodes on this
machine), run as its own process by test_multinode.py (the test session already owns a single-node Ray).

Reads the settings as JSON on stdin, consumes `expected` readings with the supervised pipeline (actors SPREAD over
the nodes) and the API app (2 replicas), removes the worker node that holds the most pipeline actors once a fifth
is durable, waits until everything is durable, and prints one JSON line: where the actors were before and after,
and whether the API answered again with replacement replicas.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import sys
import threading
import time
from collections import Counter

import httpx

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")

import ray
from ray.cluster_utils import Cluster

from autoins.pipeline import durable_messages, pipeline_status, start_pipeline, stop_pipeline
from config.settings import Settings

FAST_NODE_DEATH = {"health_check_period_ms": 500, "health_check_failure_threshold": 4, "health_check_timeout_ms": 500}
MB = 1024 * 1024


def main() -> None:
    request = json.load(sys.stdin)
    settings = Settings.model_validate(request["settings"])
    http_port = request["http_port"]
    payloads = pathlib.Path(request["payloads_file"]).read_bytes().splitlines()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": 150 * MB, "_system_config": FAST_NODE_DEATH})
    workers = [cluster.add_node(num_cpus=1, object_store_memory=100 * MB) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="multinode", log_to_driver=False, configure_logging=False)
    try:
        print(json.dumps(asyncio.run(scenario(settings, payloads, http_port, cluster, workers))), flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()


async def scenario(settings: Settings, payloads: list[bytes], http_port: int, cluster: Cluster, workers: list) -> dict:
    from ray import serve

    from config.names import API_APP
    from deployments.builder import API_ROUTE, build_api_app

    expected = len(payloads)
    serve.start(http_options={"host": "127.0.0.1", "port": http_port})
    serve.run(build_api_app(settings), name=API_APP, route_prefix=API_ROUTE)
    pipeline = start_pipeline(settings, prefix="mn-")
    before = await placements(pipeline)
    replicas_before = replica_nodes()
    # Paced production (about 2,000 readings/s) so that the node is lost while readings still arrive.
    producing = threading.Thread(target=produce_paced, args=(settings, payloads), daemon=True)
    producing.start()
    started = time.monotonic()
    while await durable_messages(settings) < expected // 5:
        assert time.monotonic() - started < 180, "no progress before the node loss"
        await asyncio.sleep(0.2)
    by_node = Counter(before.values())
    victim = max(workers, key=lambda w: by_node.get(w.node_id, 0))
    durable_at_loss = await durable_messages(settings)
    cluster.remove_node(victim, allow_graceful=False)
    lost_at = time.monotonic()
    resumed_after_s = None
    while (durable := await durable_messages(settings)) < expected:
        if resumed_after_s is None and durable > durable_at_loss:
            resumed_after_s = time.monotonic() - lost_at
        assert time.monotonic() - lost_at < 300, f"{durable}/{expected} durable 300 s after the node loss"
        await asyncio.sleep(0.25)
    if resumed_after_s is None:
        resumed_after_s = time.monotonic() - lost_at
    api_ok = await api_answers(f"http://127.0.0.1:{http_port}", deadline_s=120)
    pipeline.refresh()
    after = await placements(pipeline)
    status = await pipeline_status(pipeline)
    await stop_pipeline(pipeline)
    serve.shutdown()
    return {
        "before": before, "after": after, "victim": victim.node_id, "durable_at_loss": durable_at_loss,
        "resumed_after_s": round(resumed_after_s, 1), "api_ok_after_loss": api_ok,
        "replicas_before": replicas_before, "replicas_after": replica_nodes(), "lag": status["lag"],
    }


def produce_paced(settings: Settings, payloads: list[bytes], chunk: int = 500, pause_s: float = 0.25) -> None:
    from tests.integration.pipeline_support import key_of, produce

    for start in range(0, len(payloads), chunk):
        part = payloads[start : start + chunk]
        produce(settings, part, [key_of(p) for p in part])
        time.sleep(pause_s)


async def placements(pipeline) -> dict[str, str]:
    """Actor name → node id, from each actor's own stats (restarting actors are retried)."""
    names = {**{f"consumer-{i}": a for i, a in enumerate(pipeline.consumers)},
             **{f"shard-{i}": a for i, a in enumerate(pipeline.shards)},
             **{f"persistence-{i}": a for i, a in enumerate(pipeline.persisters)}, "risk-scorer": pipeline.scorer}
    out = {}
    for name, actor in names.items():
        method = actor.status if name.startswith("consumer") else actor.stats
        for _ in range(120):
            try:
                out[name] = (await asyncio.wait_for(method.remote(), 5))["node"]
                break
            except Exception:
                await asyncio.sleep(0.5)
    return out


def replica_nodes() -> list[str]:
    from ray.util.state import list_actors

    try:
        actors = list_actors(filters=[("state", "=", "ALIVE")], detail=True)
    except Exception as error:  # the state API needs the dashboard
        return [f"unknown: {type(error).__name__}"]
    return sorted(a.node_id for a in actors if "ApiGateway" in (a.class_name or ""))


async def api_answers(base: str, deadline_s: float) -> bool:
    deadline = time.monotonic() + deadline_s
    async with httpx.AsyncClient(timeout=3) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{base}/health/live")).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    return False


if __name__ == "__main__":
    main()
