-- Issue 13 item 2: revocable access. A token carries its user's token version (claim `ver`); a request whose
-- version is not the user's current one is refused (docs/SECURITY.md §8). Disable, role change, driver
-- reassignment, password change, delete and logout bump it. A table of its own, not a column of users: a
-- deleted login keeps its row, so its tokens stay refused after the users row is gone; a user without a row is
-- at version 0 (never revoked).
CREATE TABLE token_versions (
    user_id    text        NOT NULL,
    version    integer     NOT NULL CONSTRAINT token_versions_version_positive CHECK (version > 0),
    changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT token_versions_pkey PRIMARY KEY (user_id)
);

COMMENT ON TABLE token_versions IS 'Per-user token version: tokens minted with another version are revoked.';
