-- When each signing key entered its status: the clock of the automatic rotation schedule (a
-- current key signs for the rotation period from here; a retiring key retires once every token
-- it signed has expired, counted from here). Keys stored before are stamped with the time of
-- this migration: a retiring key then waits one full token lifetime from now, never less than
-- it needs.
ALTER TABLE signing_keys ADD COLUMN status_since BIGINT NOT NULL DEFAULT 0;
UPDATE signing_keys SET status_since = CAST(EXTRACT(EPOCH FROM now()) AS BIGINT);
-- At most one current and at most one next key: instances publishing a next key together
-- agree on one (`INSERT … ON CONFLICT DO NOTHING`), as they do on the first current key.
DROP INDEX signing_keys_one_current;
CREATE UNIQUE INDEX signing_keys_one_per_status ON signing_keys (status)
    WHERE status IN ('current', 'next');
