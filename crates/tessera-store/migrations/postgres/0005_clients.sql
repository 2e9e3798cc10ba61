-- The OAuth client registry. `scope` is the canonical scope string (tokens sorted, separated
-- by single spaces; empty for none); `redirect_uris` the exact redirect URIs in order,
-- separated by single spaces (a valid URI holds none); `secret_hash` the SHA-256 of a
-- confidential client's secret, NULL exactly for a public client. `seq` orders clients
-- registered in the same second by insertion.
CREATE TABLE clients (
    id            TEXT    PRIMARY KEY NOT NULL,
    seq           BIGINT  GENERATED ALWAYS AS IDENTITY,
    name          TEXT    NOT NULL,
    scope         TEXT    NOT NULL,
    redirect_uris TEXT    NOT NULL,
    is_public     BOOLEAN NOT NULL,
    first_party   BOOLEAN NOT NULL,
    dpop          BOOLEAN NOT NULL,
    secret_hash   BYTEA,
    created_at    BIGINT  NOT NULL,
    CHECK ((secret_hash IS NULL) = is_public),
    CHECK (secret_hash IS NULL OR octet_length(secret_hash) = 32)
);
