"""The supervisor's families: consumer lag measured from outside (storage/kafka/lag.py) and pipeline actor
restarts. Recorded with ray.util.metrics (exported as `ray_kafka_consumer_lag`, `ray_pipeline_actor_restarts_total`).
Tags are bounded by the topic's partitions and the pipeline's actor names, never per driver."""

from __future__ import annotations

from ray.util.metrics import Counter, Gauge

LAG_EVERY_S = 5.0


class PipelineMetrics:
    def __init__(self, topic: str, group: str) -> None:
        self.topic, self.group = topic, group
        self.lag = Gauge("kafka_consumer_lag", description="Messages past the group's committed offset, per "
                         "partition (fetch high watermark - committed), measured by the supervisor",
                         tag_keys=("topic", "partition", "consumer_group"))
        self.restarts = Counter("pipeline_actor_restarts", description="Pipeline actors that came back with a new "
                                "process or were re-created (Ray adds _total)", tag_keys=("role", "actor"))

    def set_lag(self, lag: dict[int, int]) -> None:
        for partition, behind in lag.items():
            self.lag.set(behind, tags={"topic": self.topic, "partition": str(partition), "consumer_group": self.group})

    def restarted(self, role: str, actor: str, times: int = 1) -> None:
        self.restarts.inc(times, tags={"role": role, "actor": actor})
