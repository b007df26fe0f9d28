-- Issue 16 item 3, first notice of loss: a `crash_detected` domain event opens one claim, in the persistence
-- transaction that appends the event (claim_id = uuid5 of the crash event's id, so a replay or a redelivered
-- batch inserts nothing new: ON CONFLICT DO NOTHING). The driver then confirms or rejects it once
-- (decided_at, decided_by, note). No foreign key to drivers, like trips: a projection of the event stream must
-- never fail on an admin-managed row. Location and speed are NULL when unknown (a device without them, or a
-- driver whose positions are not kept).
CREATE TABLE claims (
    claim_id       uuid             NOT NULL,
    crash_event_id uuid             NOT NULL,
    driver_id      text             NOT NULL CONSTRAINT claims_driver_id_not_empty CHECK (driver_id <> ''),
    trip_id        uuid             NULL,
    occurred_at    timestamptz      NOT NULL,
    trigger        text             NOT NULL,
    peak_g         double precision NOT NULL,
    lat            double precision NULL CONSTRAINT claims_lat_range CHECK (lat BETWEEN -90 AND 90),
    lon            double precision NULL CONSTRAINT claims_lon_range CHECK (lon BETWEEN -180 AND 180),
    speed_kmh      double precision NULL,
    readings       jsonb            NOT NULL DEFAULT '[]'::jsonb,
    status         text             NOT NULL DEFAULT 'open'
        CONSTRAINT claims_status_known CHECK (status IN ('open', 'confirmed', 'rejected')),
    opened_at      timestamptz      NOT NULL DEFAULT now(),
    decided_at     timestamptz      NULL,
    decided_by     uuid             NULL,
    note           text             NULL,
    CONSTRAINT claims_pkey PRIMARY KEY (claim_id),
    CONSTRAINT claims_decided_when_not_open CHECK ((status = 'open') = (decided_at IS NULL))
);

COMMENT ON TABLE claims IS 'First notice of loss: one claim per crash_detected event; readings = the 30 s before and after.';
COMMENT ON COLUMN claims.readings IS 'Array of {ts_ms, offset_s, lat, lon, speed_kmh, accel_ms2, heading}, in time order.';

-- The admin list (newest first, optionally by status) and a driver's own claims.
CREATE INDEX claims_status_occurred_at_idx ON claims (status, occurred_at DESC);
CREATE INDEX claims_driver_id_occurred_at_idx ON claims (driver_id, occurred_at DESC);
