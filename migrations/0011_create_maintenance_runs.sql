-- Issue 14 item 4: every run of the maintenance actor (or `autoins maintenance run`) is one row: which task,
-- when it started and finished, how it ended, and what it did (partitions created, archived, analyzed, sizes).
-- `skipped` runs found another run holding the maintenance advisory lock and did nothing.
-- Numbered 0011: 0009 and 0010 are being added elsewhere at the same time.
CREATE TABLE maintenance_runs (
    run_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task        text        NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    outcome     text        NOT NULL DEFAULT 'running'
        CONSTRAINT maintenance_runs_outcome_known CHECK (outcome IN ('running', 'ok', 'failed', 'skipped')),
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT maintenance_runs_finished_after_start CHECK (finished_at IS NULL OR finished_at >= started_at)
);

-- "When did this task last run?" (the schedule) reads the newest row per task.
CREATE INDEX maintenance_runs_task_started ON maintenance_runs (task, started_at DESC);
