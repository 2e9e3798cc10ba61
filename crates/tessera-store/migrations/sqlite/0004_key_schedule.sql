-- When each signing key entered its status: the clock of the automatic rotation schedule (a
-- current key signs for the rotation period from here; a retiring key retires once every token
-- it signed has expired, counted from here). Keys stored before are stamped with the time of
-- this migration: a retiring key then waits one full token lifetime from now, never less than
-- it needs.
ALTER TABLE signing_keys ADD COLUMN status_since INTEGER NOT NULL DEFAULT 0;
UPDATE signing_keys SET status_since = CAST(strftime('%s', 'now') AS INTEGER);
