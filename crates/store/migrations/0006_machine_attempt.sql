-- The boot attempt under way for a machine (JSON: its token, when it began, the address its
-- script went to, and whether its install and final configs went out), so that a restarted
-- boot server keeps serving each config of an attempt once.
ALTER TABLE machines ADD COLUMN attempt TEXT;
