-- The append-only domain event store (DESIGN.md §2.3, §2.4, §4): domain_events partitioned by month
-- on occurred_at, plus the streams head table that enforces a single writer per stream.

CREATE TABLE domain_events (
    event_id       uuid        NOT NULL,
    stream_id      text        NOT NULL CONSTRAINT domain_events_stream_id_not_empty CHECK (stream_id <> ''),
    stream_version bigint      NOT NULL CONSTRAINT domain_events_stream_version_non_negative CHECK (stream_version >= 0),
    event_type     text        NOT NULL CONSTRAINT domain_events_event_type_not_empty CHECK (event_type <> ''),
    payload        jsonb       NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    request_id     text        NULL,
    -- The partition key must be part of any unique key on a partitioned table.
    CONSTRAINT domain_events_pkey PRIMARY KEY (event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);

COMMENT ON TABLE domain_events IS
    'Immutable past-tense facts per stream (one stream per driver); monthly partitions domain_events_yYYYYmMM (UTC months).';
COMMENT ON COLUMN domain_events.event_id IS 'Deterministic uuid5 of the inputs: a replay writes nothing new.';
COMMENT ON COLUMN domain_events.event_type IS 'snake_case tag, e.g. trip_started, harsh_braking_detected, risk_scored.';
COMMENT ON COLUMN domain_events.occurred_at IS 'Device time of the fact (UTC instant); the partition key.';
COMMENT ON COLUMN domain_events.recorded_at IS 'When the event store appended it (server time).';
COMMENT ON COLUMN domain_events.request_id IS 'Request id that travelled from the API through Kafka headers, when known.';

-- Replay of a stream in order. Not UNIQUE: a unique index on a partitioned table must include the
-- partition key (occurred_at), which would make (stream_id, stream_version) unique per month only.
-- Uniqueness of versions is guaranteed by the streams head table below instead.
CREATE INDEX domain_events_stream_id_version_idx ON domain_events (stream_id, stream_version);

-- Replaces plan §1.2 idx_telematics_event_type: the harsh-event query ("a driver's recent harsh
-- events") targets derived domain events, which live here, not raw readings (see migration 0001).
CREATE INDEX domain_events_harsh_by_stream_idx ON domain_events (stream_id, occurred_at DESC)
    WHERE event_type IN ('harsh_braking_detected', 'harsh_acceleration_detected',
                         'harsh_cornering_detected', 'speeding_detected');

-- The head of every stream: its current version. An append does, in the same transaction as the
-- event rows, a compare-and-set
--     UPDATE streams SET version = $new WHERE stream_id = $id AND version = $expected
-- (or INSERT for a new stream, expected version 0). Zero rows updated / a unique violation means
-- another writer got there first: a split brain is detected, never silently merged (DESIGN.md §2.4).
-- This is needed because no index on domain_events can make (stream_id, stream_version) unique
-- across monthly partitions.
CREATE TABLE streams (
    stream_id  text        NOT NULL CONSTRAINT streams_stream_id_not_empty CHECK (stream_id <> ''),
    version    bigint      NOT NULL CONSTRAINT streams_version_non_negative CHECK (version >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT streams_pkey PRIMARY KEY (stream_id)
);

COMMENT ON TABLE streams IS
    'Stream heads: version of the last event appended; compare-and-set in the append transaction guards the single writer.';
