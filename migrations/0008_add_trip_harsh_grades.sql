-- Issue 12: harsh episodes carry a grade, low | medium | high (docs/DOMAIN.md §4). The harsh_*_count
-- columns keep counting the episodes that count as harsh (grades medium and high); per kind, trips gain how
-- many of those were high, and how many low-grade episodes there were (not harsh: not in the count).
-- medium = count - high. Rows projected before grades existed get 0 and 0: all their episodes were
-- medium (the old thresholds are the medium band), which is also how old events decode.
-- Numbered 0008: 0007 is being added on main at the same time.
ALTER TABLE trips
    ADD COLUMN harsh_braking_low_count       integer NOT NULL DEFAULT 0
        CONSTRAINT trips_harsh_braking_low_count_non_negative CHECK (harsh_braking_low_count >= 0),
    ADD COLUMN harsh_braking_high_count      integer NOT NULL DEFAULT 0
        CONSTRAINT trips_harsh_braking_high_count_in_count CHECK (harsh_braking_high_count BETWEEN 0 AND harsh_braking_count),
    ADD COLUMN harsh_acceleration_low_count  integer NOT NULL DEFAULT 0
        CONSTRAINT trips_harsh_acceleration_low_count_non_negative CHECK (harsh_acceleration_low_count >= 0),
    ADD COLUMN harsh_acceleration_high_count integer NOT NULL DEFAULT 0
        CONSTRAINT trips_harsh_acceleration_high_count_in_count CHECK (harsh_acceleration_high_count BETWEEN 0 AND harsh_acceleration_count),
    ADD COLUMN harsh_cornering_low_count     integer NOT NULL DEFAULT 0
        CONSTRAINT trips_harsh_cornering_low_count_non_negative CHECK (harsh_cornering_low_count >= 0),
    ADD COLUMN harsh_cornering_high_count    integer NOT NULL DEFAULT 0
        CONSTRAINT trips_harsh_cornering_high_count_in_count CHECK (harsh_cornering_high_count BETWEEN 0 AND harsh_cornering_count);

COMMENT ON COLUMN trips.harsh_braking_count IS 'Harsh braking episodes graded medium or high (domain.trip_summary).';
COMMENT ON COLUMN trips.harsh_braking_high_count IS 'Of harsh_braking_count, the episodes graded high.';
COMMENT ON COLUMN trips.harsh_braking_low_count IS 'Braking episodes graded low: recorded, not harsh, not in harsh_braking_count.';
