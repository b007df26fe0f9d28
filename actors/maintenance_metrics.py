"""The maintenance actor's Prometheus families (plan §13 weekly task), recorded with ray.util.metrics like every
actor's: each node's agent exports them with a `ray_` prefix and the API's /metrics merges them
(docs/OPERATIONS.md "Metrics"). Tags are table, partition and index names: bounded by the schema and the
partition window (about 2 × 16 partitions), never per driver. Ray cannot remove a series: a dropped
partition keeps its last value until the actor restarts.
"""

from __future__ import annotations

from ray.util.metrics import Counter, Gauge

from usecases.maintenance import RunResult


class MaintenanceMetrics:
    def __init__(self) -> None:
        self.runs = Counter("maintenance_runs", description="Maintenance runs by task and outcome (ok, failed, "
                            "skipped); Ray adds _total", tag_keys=("task", "outcome"))
        self.last_success = Gauge("maintenance_last_success_timestamp_seconds",
                                  description="Unix time the task last finished ok", tag_keys=("task",))
        self.table_size = Gauge("db_table_size_bytes", description="Table size with indexes and TOAST; a "
                                "partitioned table counts its partitions", tag_keys=("table",))
        self.partition_size = Gauge("db_partition_size_bytes", description="One monthly partition's size "
                                    "with indexes and TOAST", tag_keys=("table", "partition"))
        self.unused_index_size = Gauge("db_unused_index_size_bytes", description="Non-unique indexes never "
                                       "scanned (pg_stat_user_indexes.idx_scan = 0)", tag_keys=("table", "index"))
        self.unused_indexes = Gauge("db_unused_indexes", description="How many non-unique indexes were never "
                                    "scanned since statistics were reset")

    def record(self, result: RunResult, finished_at_s: float) -> None:
        self.runs.inc(1, tags={"task": result.task.value, "outcome": result.outcome.value})
        if result.outcome.value == "ok":
            self.last_success.set(finished_at_s, tags={"task": result.task.value})
        if result.report is None:
            return
        for size in result.report.sizes:
            if size.kind == "table":
                self.table_size.set(size.size_bytes, tags={"table": size.name})
            else:
                self.partition_size.set(size.size_bytes, tags={"table": size.parent or "", "partition": size.name})
        for index in result.report.unused_indexes:
            self.unused_index_size.set(index.size_bytes, tags={"table": index.table, "index": index.index})
        self.unused_indexes.set(len(result.report.unused_indexes))
