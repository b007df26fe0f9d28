-- Read models (DESIGN.md §4): drivers, users, policies are written by the API/admin (and demo seed);
-- trips and risk_scores are projections of domain events (idempotent upserts keyed by the event's
-- deterministic ids). Indexes are the plan's (§1.2) where it names them.
--
-- trips and risk_scores deliberately have no foreign key to drivers: a projection of the event
-- stream must never fail because an admin-managed row is missing or late (DESIGN.md §2.5,
-- projections are eventually consistent); the driver id is the stream's key, not a read-model row.

CREATE TABLE drivers (
    driver_id      text        NOT NULL CONSTRAINT drivers_driver_id_not_empty CHECK (driver_id <> ''),
    first_name     text        NOT NULL,
    last_name      text        NOT NULL,
    email          text        NOT NULL CONSTRAINT drivers_email_has_at CHECK (position('@' IN email) > 1),
    phone          text        NULL,
    license_number text        NULL,
    date_of_birth  date        NULL,
    timezone       text        NOT NULL DEFAULT 'UTC' CONSTRAINT drivers_timezone_not_empty CHECK (timezone <> ''),
    is_active      boolean     NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT drivers_pkey PRIMARY KEY (driver_id),
    CONSTRAINT drivers_email_key UNIQUE (email)
);

COMMENT ON TABLE drivers IS 'Driver profiles (admin CRUD, demo seed). driver_id is also the Kafka key and the event stream key.';
COMMENT ON COLUMN drivers.timezone IS 'IANA zone name for local-time features (night driving) and display.';

CREATE TABLE users (
    user_id       uuid        NOT NULL,
    username      text        NOT NULL CONSTRAINT users_username_not_empty CHECK (username <> ''),
    password_hash text        NOT NULL CONSTRAINT users_password_hash_not_empty CHECK (password_hash <> ''),
    role          text        NOT NULL CONSTRAINT users_role_known CHECK (role IN ('driver', 'admin')),
    driver_id     text        NULL REFERENCES drivers (driver_id),
    is_active     boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz NULL,
    CONSTRAINT users_pkey PRIMARY KEY (user_id),
    CONSTRAINT users_username_key UNIQUE (username),
    -- A driver login must say whose data it may read (DESIGN.md §5: a driver reads only their own).
    CONSTRAINT users_driver_role_has_driver CHECK (role <> 'driver' OR driver_id IS NOT NULL)
);

COMMENT ON TABLE users IS 'Logins. password_hash is argon2; role driver reads only its driver_id, admin reads all.';

-- One login per driver; also serves the foreign key (deleting a driver checks users).
CREATE UNIQUE INDEX users_driver_id_key ON users (driver_id) WHERE driver_id IS NOT NULL;

CREATE TABLE policies (
    policy_id       uuid          NOT NULL,
    driver_id       text          NOT NULL REFERENCES drivers (driver_id),
    policy_number   text          NOT NULL CONSTRAINT policies_policy_number_not_empty CHECK (policy_number <> ''),
    status          text          NOT NULL CONSTRAINT policies_status_known
                                  CHECK (status IN ('pending', 'active', 'suspended', 'cancelled', 'expired')),
    base_premium    numeric(12,2) NOT NULL CONSTRAINT policies_base_premium_non_negative CHECK (base_premium >= 0),
    current_premium numeric(12,2) NOT NULL CONSTRAINT policies_current_premium_non_negative CHECK (current_premium >= 0),
    per_km_rate     numeric(10,4) NOT NULL DEFAULT 0 CONSTRAINT policies_per_km_rate_non_negative CHECK (per_km_rate >= 0),
    currency        char(3)       NOT NULL CONSTRAINT policies_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    effective_date  date          NOT NULL,
    expiration_date date          NOT NULL,
    last_score      numeric(5,2)  NULL CONSTRAINT policies_last_score_range CHECK (last_score BETWEEN 0 AND 100),
    last_band       text          NULL,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT policies_pkey PRIMARY KEY (policy_id),
    CONSTRAINT policies_policy_number_key UNIQUE (policy_number),
    CONSTRAINT policies_dates_ordered CHECK (expiration_date > effective_date)
);

COMMENT ON TABLE policies IS 'Insurance policies; current_premium is repriced from the latest risk score (last_score, last_band).';
COMMENT ON COLUMN policies.per_km_rate IS 'Usage-based component, currency units per km driven.';
COMMENT ON COLUMN policies.currency IS 'ISO 4217 code.';

CREATE INDEX policies_driver_id_idx ON policies (driver_id);

CREATE TABLE trips (
    trip_id                  uuid             NOT NULL,
    driver_id                text             NOT NULL CONSTRAINT trips_driver_id_not_empty CHECK (driver_id <> ''),
    start_time               timestamptz      NOT NULL,
    end_time                 timestamptz      NOT NULL,
    distance_m               double precision NOT NULL CONSTRAINT trips_distance_m_non_negative CHECK (distance_m >= 0),
    duration_s               double precision NOT NULL CONSTRAINT trips_duration_s_non_negative CHECK (duration_s >= 0),
    avg_speed_kmh            real             NOT NULL CONSTRAINT trips_avg_speed_kmh_non_negative CHECK (avg_speed_kmh >= 0),
    max_speed_kmh            real             NOT NULL CONSTRAINT trips_max_speed_kmh_non_negative CHECK (max_speed_kmh >= 0),
    harsh_braking_count      integer          NOT NULL DEFAULT 0 CONSTRAINT trips_harsh_braking_count_non_negative CHECK (harsh_braking_count >= 0),
    harsh_acceleration_count integer          NOT NULL DEFAULT 0 CONSTRAINT trips_harsh_acceleration_count_non_negative CHECK (harsh_acceleration_count >= 0),
    harsh_cornering_count    integer          NOT NULL DEFAULT 0 CONSTRAINT trips_harsh_cornering_count_non_negative CHECK (harsh_cornering_count >= 0),
    speeding_moderate_s      double precision NOT NULL DEFAULT 0 CONSTRAINT trips_speeding_moderate_s_non_negative CHECK (speeding_moderate_s >= 0),
    speeding_severe_s        double precision NOT NULL DEFAULT 0 CONSTRAINT trips_speeding_severe_s_non_negative CHECK (speeding_severe_s >= 0),
    night_s                  double precision NOT NULL DEFAULT 0 CONSTRAINT trips_night_s_non_negative CHECK (night_s >= 0),
    phone_use_moving_s       double precision NOT NULL DEFAULT 0 CONSTRAINT trips_phone_use_moving_s_non_negative CHECK (phone_use_moving_s >= 0),
    idle_s                   double precision NOT NULL DEFAULT 0 CONSTRAINT trips_idle_s_non_negative CHECK (idle_s >= 0),
    crash_count              integer          NOT NULL DEFAULT 0 CONSTRAINT trips_crash_count_non_negative CHECK (crash_count >= 0),
    end_reason               text             NOT NULL CONSTRAINT trips_end_reason_not_empty CHECK (end_reason <> ''),
    created_at               timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT trips_pkey PRIMARY KEY (trip_id),
    CONSTRAINT trips_times_ordered CHECK (end_time >= start_time)
);

COMMENT ON TABLE trips IS 'Projection of trip_ended events (domain.trip_summary.TripSummary); trip_id is the deterministic trip id.';
COMMENT ON COLUMN trips.end_reason IS 'Why the trip ended: ignition_off, parked, data_gap (see domain.trip_summary).';

-- Plan §1.2 idx_trips_driver_dates: a driver's trips by time (the trips page scans it backwards).
CREATE INDEX trips_driver_id_start_time_end_time_idx ON trips (driver_id, start_time, end_time);

CREATE TABLE risk_scores (
    score_id      uuid         NOT NULL,
    driver_id     text         NOT NULL CONSTRAINT risk_scores_driver_id_not_empty CHECK (driver_id <> ''),
    scored_at     timestamptz  NOT NULL,
    score         numeric(5,2) NOT NULL CONSTRAINT risk_scores_score_range CHECK (score BETWEEN 0 AND 100),
    band          text         NOT NULL CONSTRAINT risk_scores_band_not_empty CHECK (band <> ''),
    model_version text         NOT NULL CONSTRAINT risk_scores_model_version_not_empty CHECK (model_version <> ''),
    feature_hash  text         NOT NULL,
    credibility   real         NOT NULL CONSTRAINT risk_scores_credibility_range CHECK (credibility BETWEEN 0 AND 1),
    explanation   jsonb        NULL,
    trip_id       uuid         NULL,
    CONSTRAINT risk_scores_pkey PRIMARY KEY (score_id)
);

COMMENT ON TABLE risk_scores IS 'Projection of risk_scored events: score history per driver; score on a 0..100 scale.';
COMMENT ON COLUMN risk_scores.feature_hash IS 'Hash of the feature vector: same features + model_version give the same score.';
COMMENT ON COLUMN risk_scores.credibility IS 'Weight of the driver''s own data vs the prior, 0..1 (little driving = low).';
COMMENT ON COLUMN risk_scores.trip_id IS 'The trip whose end triggered the scoring, if any.';

-- Plan §1.2 idx_risk_scores_driver_timestamp: latest score and score history per driver.
CREATE INDEX risk_scores_driver_id_scored_at_idx ON risk_scores (driver_id, scored_at DESC);
