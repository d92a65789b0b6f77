-- Plans, their revision history, and per-plan secrets.
-- Times are Unix milliseconds (UTC). Never edit a migration once released: add a new one.

CREATE TABLE plans (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Every save is a revision; the newest is the plan's current state.
CREATE TABLE plan_revisions (
    plan_id    INTEGER NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
    revision   INTEGER NOT NULL CHECK (revision >= 1),
    yaml       TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (plan_id, revision)
) STRICT;

-- Secrets generated for a plan (the K3s token, ...). Never part of the plan file.
CREATE TABLE plan_secrets (
    plan_id    INTEGER NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (plan_id, name)
) STRICT;
