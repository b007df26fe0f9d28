-- Issue 16 items 2 and 5: disputes of a trip's episodes, the premium ledger, and the rules version of every
-- decision. Both tables are projections of the driver's risk stream (`risk:{driver_id}` in domain_events),
-- written in the transaction that appends the events, keyed by the events' deterministic ids: rebuilding them
-- from the log gives the same rows (docs/SCORING.md, "Disputes and the premium ledger").
-- Numbered 0013: 0012 and 0014 are being added elsewhere at the same time.

CREATE TABLE disputes (
    dispute_id    uuid        NOT NULL,
    driver_id     text        NOT NULL CONSTRAINT disputes_driver_id_not_empty CHECK (driver_id <> ''),
    trip_id       uuid        NOT NULL,
    episode_id    uuid        NOT NULL,
    episode_type  text        NOT NULL,
    reason        text        NOT NULL CONSTRAINT disputes_reason_not_empty CHECK (btrim(reason) <> ''),
    opened_by     text        NOT NULL,
    opened_at     timestamptz NOT NULL,
    adjustment    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status        text        NOT NULL DEFAULT 'open'
                              CONSTRAINT disputes_status_known CHECK (status IN ('open', 'accepted', 'rejected')),
    note          text        NULL,
    decided_by    text        NULL,
    decided_at    timestamptz NULL,
    CONSTRAINT disputes_pkey PRIMARY KEY (dispute_id),
    -- One dispute per episode: the id is uuid5 of the episode's id (domain.disputes.dispute_id).
    CONSTRAINT disputes_episode_id_key UNIQUE (episode_id),
    CONSTRAINT disputes_decided_has_decision CHECK ((status = 'open') = (decided_at IS NULL))
);

COMMENT ON TABLE disputes IS 'Projection of dispute_opened / dispute_decided events: a driver contests one episode of a trip.';

CREATE INDEX disputes_driver_id_opened_at_idx ON disputes (driver_id, opened_at DESC);
CREATE INDEX disputes_open_idx ON disputes (opened_at) WHERE status = 'open';

CREATE TABLE premium_ledger (
    entry_id         uuid          NOT NULL,
    driver_id        text          NOT NULL CONSTRAINT premium_ledger_driver_id_not_empty CHECK (driver_id <> ''),
    stream_version   bigint        NOT NULL,
    policy_id        uuid          NOT NULL,
    occurred_at      timestamptz   NOT NULL,
    cause            text          NOT NULL
                     CONSTRAINT premium_ledger_cause_known CHECK (cause IN ('trip', 'dispute', 'model_version', 'renewal')),
    trip_id          uuid          NULL,
    dispute_id       uuid          NULL,
    model_version    text          NOT NULL,
    feature_hash     text          NOT NULL,
    rules_version    text          NOT NULL,
    score            double precision NOT NULL,
    band             text          NOT NULL,
    previous_premium numeric(12,2) NULL,
    premium          numeric(12,2) NOT NULL,
    currency         char(3)       NOT NULL,
    cap_applied      boolean       NOT NULL,
    clamp_applied    boolean       NOT NULL,
    CONSTRAINT premium_ledger_pkey PRIMARY KEY (entry_id),
    CONSTRAINT premium_ledger_driver_id_stream_version_key UNIQUE (driver_id, stream_version)
);

COMMENT ON TABLE premium_ledger IS 'Every premium decision with its cause; entry_id is the event id, stream_version its place in risk:{driver_id}.';
COMMENT ON COLUMN premium_ledger.rules_version IS 'domain.rules_version: hash of the pricing terms, detector thresholds and scoring window in force ('''' before it was recorded).';

-- A decision records the rules it was made under (scores written before this migration have none).
ALTER TABLE risk_scores ADD COLUMN rules_version text NULL;
COMMENT ON COLUMN risk_scores.rules_version IS 'domain.rules_version of the scoring; NULL for scores written before it was recorded.';
