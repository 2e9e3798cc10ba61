-- The OAuth client registry. `scope` is the canonical scope string (tokens sorted, separated
-- by single spaces; empty for none); `redirect_uris` the exact redirect URIs in order,
-- separated by single spaces (a valid URI holds none); `secret_hash` the SHA-256 of a
-- confidential client's secret, NULL exactly for a public client.
CREATE TABLE clients (
    id            TEXT    PRIMARY KEY NOT NULL,
    name          TEXT    NOT NULL,
    scope         TEXT    NOT NULL,
    redirect_uris TEXT    NOT NULL,
    is_public     INTEGER NOT NULL,
    first_party   INTEGER NOT NULL,
    dpop          INTEGER NOT NULL,
    secret_hash   BLOB,
    created_at    INTEGER NOT NULL,
    CHECK ((secret_hash IS NULL) = (is_public <> 0)),
    CHECK (secret_hash IS NULL OR length(secret_hash) = 32)
);
