-- Settings of the workstation's Flatlab that belong to no plan (where the image mirror lives,
-- which release servers it fetches from). Values are JSON.
CREATE TABLE settings (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
