-- What Flatlab remembers about a plan's running cluster that is neither plan nor secret: an
-- upgrade it handed to the cluster and has not yet written into the plan, when the secrets
-- were last backed up. Goes with the plan when it is deleted.
CREATE TABLE plan_state (
    plan_id    INTEGER NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (plan_id, key)
) STRICT;
