-- Readings without a position: a driver in the `mileage_only` privacy mode (or erased) keeps only distance and time
-- from new readings; the pipeline drops lat, lon, heading, the speed limit and `data` before anything stores or
-- publishes them (docs/PRIVACY.md §3, domain/privacy.py strip_positions). NULL lat/lon = stripped; a device never
-- sends one (validation still requires both on the wire).
--
-- DROP NOT NULL on the partitioned parent recurses to every attached monthly partition and is a catalog-only change
-- (no rewrite, no scan); partitions created later copy the parent (LIKE parent), so they are nullable too. The range
-- CHECKs stay (NULL passes them). No "both or neither" CHECK: adding one to the parent would scan every month under
-- an ACCESS EXCLUSIVE lock; the COPY encoder writes both from one stripped reading, so they are NULL together.

ALTER TABLE telematics_events
    ALTER COLUMN lat DROP NOT NULL,
    ALTER COLUMN lon DROP NOT NULL;

COMMENT ON COLUMN telematics_events.lat IS 'Latitude in degrees; NULL: stripped (mileage_only or erased driver, docs/PRIVACY.md §3).';
COMMENT ON COLUMN telematics_events.lon IS 'Longitude in degrees; NULL: stripped together with lat.';
