-- Issue 12: readings as devices send them, and trips that end when a device goes silent.
--
-- 1. speed_kmh, accel_ms2 and heading may be unknown (NULL): phones report heading -1 without a course,
--    receivers leave fields out (docs/DOMAIN.md §1). The range checks stay (a CHECK passes on NULL).
-- 2. Log time (docs/DOMAIN.md §3, "Silence"): the silence rule measures how long a device has sent nothing
--    in *log time*, the newest device time seen so far in its Kafka partition (a per-partition watermark,
--    in offset order). It is stored where a replay needs it, so a replay measures exactly what the live fold
--    measured:
--    - telematics_events.source_watermark_ms: the partition's log time just before the reading arrived
--      (NULL for rows stored before this migration: activation then uses the reading's own time);
--    - consumer_offsets.watermark_ms: the partition's log time at next_offset, where a restarted consumer
--      resumes counting;
--    - driver_snapshots.open: the driver has a trip, a reorder buffer or a crash in progress. A shard keeps
--      such drivers in memory (they wait for log time to close them) and reloads them after a restart.

ALTER TABLE telematics_events
    ALTER COLUMN speed_kmh DROP NOT NULL,
    ALTER COLUMN accel_ms2 DROP NOT NULL,
    ALTER COLUMN heading DROP NOT NULL,
    ADD COLUMN source_watermark_ms bigint NULL;

COMMENT ON COLUMN telematics_events.speed_kmh IS 'GPS speed; NULL when the device did not know it.';
COMMENT ON COLUMN telematics_events.heading IS 'Course over ground, degrees; NULL when the device had no course.';
COMMENT ON COLUMN telematics_events.accel_ms2 IS 'Longitudinal acceleration as sent; NULL when the device did not know it.';
COMMENT ON COLUMN telematics_events.source_watermark_ms IS
    'Log time (newest device time seen in source_partition, epoch ms) just before this reading arrived.';

ALTER TABLE consumer_offsets
    ADD COLUMN watermark_ms bigint NULL;

COMMENT ON COLUMN consumer_offsets.watermark_ms IS
    'Log time of the partition (newest device time of its valid readings, epoch ms) up to next_offset.';

ALTER TABLE driver_snapshots
    ADD COLUMN open boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN driver_snapshots.open IS
    'A trip, reorder buffer or pending crash is in progress: the shard keeps the driver active until log time closes it.';

CREATE INDEX driver_snapshots_open_idx ON driver_snapshots (driver_id) WHERE open;

-- 3. Data quality of a trip (docs/DOMAIN.md §3): e.g. ignition_off_while_moving, a recording cut off at speed.
ALTER TABLE trips
    ADD COLUMN quality_flags text[] NOT NULL DEFAULT '{}';

COMMENT ON COLUMN trips.quality_flags IS 'What the data says about itself (TripSummary.quality_flags), e.g. ignition_off_while_moving.';
COMMENT ON COLUMN trips.end_reason IS 'Why the trip ended: ignition_off, parked, data_gap, device_silent (docs/DOMAIN.md §3).';
