"""The maintenance actor's Prometheus families (plan §13 weekly task), recorded with ray.util.metrics like every
actor's: each node's agent exports them with a `ray_` prefix and the API's /metrics merges them
(docs/OPERATIONS.md "Metrics"). Tags are table, partition and index names: bounded by the schema and the
partition window (about 2 × 16 partitions), never per driver. Ray cannot remove a series: a dropped
partition keeps its last value until the actor restarts.
"""

from __future__ import annotations

from ray.util.metrics import Counter, Gauge

from usecases.fairness import DriftGauges
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
        self.drift = DriftMetrics()

    def record(self, result: RunResult, finished_at_s: float) -> None:
        self.runs.inc(1, tags={"task": result.task.value, "outcome": result.outcome.value})
        if result.outcome.value == "ok":
            self.last_success.set(finished_at_s, tags={"task": result.task.value})
        if result.gauges is not None:
            self.drift.record(result.gauges)
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


class DriftMetrics:
    """The DRIFT task's gauges (usecases.fairness.DriftGauges): here, in the one maintenance actor, because the
    computation reads every scored driver's window (one run an hour, under the maintenance lock, recorded in
    maintenance_runs), not something each API replica should repeat per scrape; and one exporter means one series
    per label set. Labels: model inputs and cohorts of three dimensions. −1 = unknown (the alerts skip it)."""

    def __init__(self) -> None:
        self.feature_psi = Gauge("model_feature_psi", description="PSI of a model input between the training "
                                 "population and the drivers scored in DRIFT_WINDOW_DAYS", tag_keys=("feature",))
        self.score_psi = Gauge("model_score_psi", description="PSI of the latest scores of DRIFT_WINDOW_DAYS against "
                               "training's uniform deciles")
        self.drivers = Gauge("model_drift_drivers", description="Drivers scored in DRIFT_WINDOW_DAYS (the PSI's base)")
        self.psi_threshold = Gauge("model_drift_psi_threshold", description="DRIFT_PSI_ALERT, for the alert rule")
        self.score_ratio = Gauge("cohort_score_ratio", description="A cohort's mean score over the portfolio's",
                                 tag_keys=("dimension", "cohort"))
        self.premium_ratio = Gauge("cohort_premium_ratio", description="A cohort's mean premium over the "
                                   "portfolio's", tag_keys=("dimension", "cohort"))
        self.ratio_bound = Gauge("cohort_ratio_bound", description="COHORT_RATIO_LOW and COHORT_RATIO_HIGH, for the "
                                 "alert rule", tag_keys=("bound",))

    def record(self, gauges: DriftGauges) -> None:
        for feature, value in gauges.feature_psi.items():
            self.feature_psi.set(value, tags={"feature": feature})
        self.score_psi.set(gauges.score_psi)
        self.drivers.set(gauges.drivers)
        self.psi_threshold.set(gauges.psi_threshold)
        for (dimension, cohort), value in gauges.cohort_score_ratio.items():
            self.score_ratio.set(value, tags={"dimension": dimension, "cohort": cohort})
        for (dimension, cohort), value in gauges.cohort_premium_ratio.items():
            self.premium_ratio.set(value, tags={"dimension": dimension, "cohort": cohort})
        self.ratio_bound.set(gauges.ratio_low, tags={"bound": "low"})
        self.ratio_bound.set(gauges.ratio_high, tags={"bound": "high"})
