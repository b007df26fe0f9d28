-- Kafka positions of raw readings and of snapshots, for activation of a driver (a virtual actor):
-- snapshot + the stored readings AFTER it, replayed in Kafka order (DESIGN.md §1, §2.3).
--
-- telematics_events.source_partition/source_offset: the Kafka partition and offset the reading was
-- consumed from. NULL for rows stored before this migration (or loaded by other means); the pipeline
-- always fills them. One driver = one Kafka key = one partition, so a driver's offsets are totally
-- ordered and "after the snapshot" is `source_offset > driver_snapshots.source_offset`.
--
-- driver_snapshots.source_partition/source_offset: the position of the last reading folded into the
-- state. NULL on snapshots written before this migration: the event store treats such a snapshot as
-- absent (it cannot tell which readings came after it) and activation replays every stored reading.
--
-- Adding a nullable column without a default is a catalog-only change (no table rewrite) and reaches
-- every attached partition; partitions created later copy the parent's columns (LIKE parent).
--
-- No new index. Activation selects a driver's readings with
--     driver_id = $1 AND ts >= snapshot.last_ts - replay margin AND source_offset > snapshot.source_offset
-- which the existing telematics_events_driver_id_ts_idx (driver_id, ts DESC) already serves: it prunes
-- to the few minutes of readings since the snapshot's watermark, and the offset filter runs on those
-- rows only. An index with source_offset would be one more index maintained by every row of the hot
-- COPY path (each index costs a share of ingest throughput) for a query that runs once per driver
-- activation, not per reading.

ALTER TABLE telematics_events
    ADD COLUMN source_partition integer NULL,
    ADD COLUMN source_offset    bigint  NULL;

COMMENT ON COLUMN telematics_events.source_partition IS 'Kafka partition the reading was consumed from (NULL: unknown).';
COMMENT ON COLUMN telematics_events.source_offset IS 'Kafka offset of the reading in source_partition: the per-driver replay order.';

ALTER TABLE driver_snapshots
    ADD COLUMN source_partition integer NULL,
    ADD COLUMN source_offset    bigint  NULL;

COMMENT ON COLUMN driver_snapshots.source_partition IS 'Kafka partition of the last reading folded into the state.';
COMMENT ON COLUMN driver_snapshots.source_offset IS
    'Kafka offset of the last reading folded into the state: activation replays the readings after it (NULL: replay all).';
