-- State the pipeline keeps next to the events: per-driver snapshots (fast activation of a virtual
-- actor) and the consumer offsets written in the same transaction as the events they cover
-- (DESIGN.md §2.1: on partition assignment a consumer seeks to these, not to Kafka's commits).

CREATE TABLE driver_snapshots (
    driver_id      text        NOT NULL CONSTRAINT driver_snapshots_driver_id_not_empty CHECK (driver_id <> ''),
    stream_version bigint      NOT NULL CONSTRAINT driver_snapshots_stream_version_non_negative CHECK (stream_version >= 0),
    state          bytea       NOT NULL,
    state_format   integer     NOT NULL CONSTRAINT driver_snapshots_state_format_positive CHECK (state_format >= 1),
    last_ts        timestamptz NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT driver_snapshots_pkey PRIMARY KEY (driver_id)
);

COMMENT ON TABLE driver_snapshots IS
    'Latest per-driver state: activation loads it, then replays domain_events after stream_version.';
COMMENT ON COLUMN driver_snapshots.state IS 'Serialized driver state (msgpack); decoded according to state_format.';
COMMENT ON COLUMN driver_snapshots.state_format IS 'Version of the state encoding; an unknown format means rebuild from events.';
COMMENT ON COLUMN driver_snapshots.last_ts IS 'Device time of the last reading folded into the state (NULL: none yet).';

CREATE TABLE consumer_offsets (
    consumer_group text        NOT NULL CONSTRAINT consumer_offsets_group_not_empty CHECK (consumer_group <> ''),
    topic          text        NOT NULL CONSTRAINT consumer_offsets_topic_not_empty CHECK (topic <> ''),
    partition      integer     NOT NULL CONSTRAINT consumer_offsets_partition_non_negative CHECK (partition >= 0),
    next_offset    bigint      NOT NULL CONSTRAINT consumer_offsets_next_offset_non_negative CHECK (next_offset >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT consumer_offsets_pkey PRIMARY KEY (consumer_group, topic, partition)
);

COMMENT ON TABLE consumer_offsets IS
    'Tracking table: next Kafka offset to consume per group/topic/partition, committed atomically with the batch it covers.';
COMMENT ON COLUMN consumer_offsets.next_offset IS 'The offset of the first message NOT yet stored (Kafka commit semantics).';
