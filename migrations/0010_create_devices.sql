-- Device credentials (docs/SECURITY.md §6): a telematics device posts its driver's readings with a key the admin
-- registered. Only the key's SHA-256 is stored (domain.device_keys: a 256-bit random secret needs no slow hash).
-- A revoked device keeps its row (who posted what, and when it was last seen); rotation replaces the digest.
-- The foreign key blocks deleting a driver who still has devices, as logins and policies do.

CREATE TABLE devices (
    device_id      uuid        NOT NULL,
    driver_id      text        NOT NULL REFERENCES drivers (driver_id),
    label          text        NOT NULL DEFAULT '' CONSTRAINT devices_label_length CHECK (length(label) <= 200),
    key_digest     bytea       NOT NULL CONSTRAINT devices_key_digest_sha256 CHECK (octet_length(key_digest) = 32),
    created_at     timestamptz NOT NULL DEFAULT now(),
    key_rotated_at timestamptz NULL,
    revoked_at     timestamptz NULL,
    last_seen_at   timestamptz NULL,
    CONSTRAINT devices_pkey PRIMARY KEY (device_id),
    CONSTRAINT devices_key_digest_key UNIQUE (key_digest)
);

COMMENT ON TABLE devices IS 'Telematics devices and their keys (SHA-256 only); a device posts readings of its driver_id alone.';
COMMENT ON COLUMN devices.last_seen_at IS 'Last authenticated ingest request, written at most once per device_last_seen_interval_s per API replica.';

-- The admin list by driver, and the foreign key's check when a driver is deleted.
CREATE INDEX devices_driver_id_idx ON devices (driver_id);
