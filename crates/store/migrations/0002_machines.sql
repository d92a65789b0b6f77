-- The boot server's view of machines: planned ones with their install state and boot token,
-- and machines that network-booted without a plan (discovered).

CREATE TABLE machines (
    plan_id    INTEGER NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
    mac        TEXT    NOT NULL,
    node       TEXT    NOT NULL,
    stage      TEXT    NOT NULL,
    -- This install's boot token; a new one on every arm.
    token      TEXT    NOT NULL,
    -- JSON array of {stage, at, detail}.
    history    TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (plan_id, mac)
) STRICT;

CREATE TABLE discovered_machines (
    mac          TEXT    PRIMARY KEY,
    firmware     TEXT,
    vendor_class TEXT,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL
) STRICT;
