-- The address a machine's install is bound to (the boot server hands its configs to that
-- address only), kept so that a restarted boot server still knows it.
ALTER TABLE machines ADD COLUMN ip TEXT;

-- Boot tokens used to be kept twice: per node in plan_secrets (for `flatlab render`) and per
-- machine in `machines` (for `flatlab serve`). The machine's token is now the only one.
DELETE FROM plan_secrets WHERE name LIKE 'boot-token/%';
