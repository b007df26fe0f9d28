-- Issue 16 item 4, fairness: vehicle use is one of the cohorts whose mean score and premium are compared with the
-- portfolio's (docs/SCORING.md). It is a term of the policy (what the insured vehicle is used for), so it lives on
-- the policy row; admins set it through the policy CRUD. Existing policies are 'personal' (the default cover).
ALTER TABLE policies ADD COLUMN vehicle_use text NOT NULL DEFAULT 'personal'
    CONSTRAINT policies_vehicle_use_known CHECK (vehicle_use IN ('personal', 'commute', 'business', 'rideshare'));

COMMENT ON COLUMN policies.vehicle_use IS 'What the insured vehicle is used for: personal, commute, business or rideshare (a fairness cohort).';
