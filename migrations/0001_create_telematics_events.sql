-- Raw device readings (DESIGN.md §4), range-partitioned by month on device time `ts` (plan §1.1).
--
-- Partitions are not created here: `autoins migrate` ensures the window (retention .. ahead) and the
-- pipeline creates a month on demand before inserting into it (storage/partitions.py). There is
-- deliberately no DEFAULT partition: attaching a month next to a default partition must scan it,
-- and a row for a missing month should fail loudly rather than pile up somewhere unmanaged.
--
-- The primary key must contain the partition key (PostgreSQL cannot enforce a unique key across
-- partitions otherwise), hence (event_id, ts). Ids are deterministic (uuid5/uuid7 from the device's
-- event), so a replayed batch is absorbed by INSERT ... ON CONFLICT DO NOTHING.

CREATE TABLE telematics_events (
    event_id          uuid             NOT NULL,
    ts                timestamptz      NOT NULL,
    driver_id         text             NOT NULL CONSTRAINT telematics_events_driver_id_not_empty CHECK (driver_id <> ''),
    event_type        text             NOT NULL CONSTRAINT telematics_events_event_type_not_empty CHECK (event_type <> ''),
    lat               double precision NOT NULL CONSTRAINT telematics_events_lat_range CHECK (lat BETWEEN -90 AND 90),
    lon               double precision NOT NULL CONSTRAINT telematics_events_lon_range CHECK (lon BETWEEN -180 AND 180),
    speed_kmh         real             NOT NULL CONSTRAINT telematics_events_speed_kmh_non_negative CHECK (speed_kmh >= 0),
    accel_ms2         real             NOT NULL,
    heading           real             NOT NULL CONSTRAINT telematics_events_heading_range CHECK (heading BETWEEN 0 AND 360),
    speed_limit_kmh   real             NULL     CONSTRAINT telematics_events_speed_limit_positive CHECK (speed_limit_kmh > 0),
    lateral_accel_ms2 real             NULL,
    data              jsonb            NULL,
    received_at       timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT telematics_events_pkey PRIMARY KEY (event_id, ts)
) PARTITION BY RANGE (ts);

COMMENT ON TABLE telematics_events IS
    'Raw device readings, one row per accepted event; monthly partitions telematics_events_yYYYYmMM (UTC months).';
COMMENT ON COLUMN telematics_events.ts IS 'Device time (UTC instant); the partition key.';
COMMENT ON COLUMN telematics_events.event_type IS
    'Reading kind: position, ignition_on, ignition_off, phone_use, crash. Derived facts (harsh braking, speeding) are domain_events.';
COMMENT ON COLUMN telematics_events.received_at IS 'When the pipeline stored the row (server time).';

-- Plan §1.2 idx_telematics_driver_timestamp: a driver's recent readings. Created on the partitioned
-- parent, so every partition (existing or attached later) gets its own copy automatically.
CREATE INDEX telematics_events_driver_id_ts_idx ON telematics_events (driver_id, ts DESC);

-- Plan §1.2 also proposes two indexes on this table that we replace on purpose:
--  * idx_telematics_event_type (partial, WHERE event_type IN harsh types): harsh braking,
--    acceleration, cornering and speeding are not reading types here. They are DERIVED by the
--    driver shards and stored as domain events, so that partial index lives on domain_events
--    (migration 0002, domain_events_harsh_by_stream_idx); on this table it would always be empty.
--  * idx_telematics_data_speed (GIN on data->'speed'): speed is the typed column speed_kmh, not a
--    JSON attribute, and a GIN index cannot serve range predicates (speed > x) anyway. Every
--    index on this table slows the hot COPY path, so none is added for it.
