-- Two scorings of one trip (a model version switch re-scores it) share scored_at (the trip's end, device
-- time): which one is the latest must not be decided by score_id. recorded_at is when the row was written;
-- the latest score is the newest scored_at, then the newest recorded_at.
ALTER TABLE risk_scores ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT clock_timestamp();

COMMENT ON COLUMN risk_scores.recorded_at IS 'When the scorer wrote the row: orders scorings of the same scored_at.';

DROP INDEX risk_scores_driver_id_scored_at_idx;
CREATE INDEX risk_scores_driver_id_scored_at_recorded_at_idx ON risk_scores (driver_id, scored_at DESC, recorded_at DESC);
