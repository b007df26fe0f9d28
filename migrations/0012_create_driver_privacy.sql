-- Privacy modes (a driver's consent), private trips and erasures: read models of the `privacy:{driver_id}`
-- streams in domain_events (docs/PRIVACY.md, domain/privacy.py). The events are the record (who, when); these
-- tables are what the API, the live feeds and the pipeline read, written in the same transaction as the event.
--
-- No foreign key to drivers: like trips and risk_scores they are projections of the event log and must not fail
-- because an admin-managed row is missing or late. A driver without a row here is in the default mode `full`.

CREATE TABLE driver_privacy (
    driver_id   text        PRIMARY KEY CONSTRAINT driver_privacy_driver_id_not_empty CHECK (driver_id <> ''),
    mode        text        NOT NULL DEFAULT 'full'
                            CONSTRAINT driver_privacy_mode_known CHECK (mode IN ('full', 'private_trips', 'mileage_only')),
    version     bigint      NOT NULL CONSTRAINT driver_privacy_version_positive CHECK (version > 0),
    changed_at  timestamptz NOT NULL,
    changed_by  text        NOT NULL,
    erased_at   timestamptz NULL
);

COMMENT ON TABLE driver_privacy IS
    'Each driver''s privacy mode as of the head (version) of their privacy:{id} stream; absent = full, never erased.';
COMMENT ON COLUMN driver_privacy.changed_by IS 'User id of whoever made the last privacy change (the event says the role).';

CREATE TABLE private_trips (
    trip_id    uuid        PRIMARY KEY,
    driver_id  text        NOT NULL CONSTRAINT private_trips_driver_id_not_empty CHECK (driver_id <> ''),
    marked_at  timestamptz NOT NULL,
    marked_by  text        NOT NULL
);

COMMENT ON TABLE private_trips IS 'Trips whose route and positions are withheld from every route and feed (trip_marked_private).';

-- A driver's private trips, read with their mode (one probe per request that may show positions).
CREATE INDEX private_trips_driver_id_idx ON private_trips (driver_id);
