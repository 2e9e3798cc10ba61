-- Tessera's PostgreSQL schema: the SQLite schema's tables, in the schema named by the
-- namespace (the pool's search_path). Times are BIGINT Unix seconds; token hashes are 32-byte
-- BYTEA (SHA-256 of the opaque token: the store never sees a usable token). `seq` columns keep
-- insertion order as the tie-breaker SQLite's rowid gives.

CREATE TABLE users (
    id            TEXT    PRIMARY KEY NOT NULL,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    is_admin      BOOLEAN NOT NULL,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY NOT NULL,
    seq        BIGINT  GENERATED ALWAYS AS IDENTITY,
    token_hash BYTEA   UNIQUE,
    user_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    last_seen  BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    user_agent TEXT,
    ip         TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at, seq);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE refresh_families (
    id               TEXT    PRIMARY KEY NOT NULL,
    user_id          TEXT    NOT NULL,
    sid              TEXT    NOT NULL,
    client_id        TEXT,
    scope            TEXT,
    created_at       BIGINT  NOT NULL,
    expires_at       BIGINT  NOT NULL,
    generation       BIGINT  NOT NULL,
    rotated_at       BIGINT,
    sealed_successor BYTEA,
    revoked_at       BIGINT
);
CREATE INDEX refresh_families_by_sid ON refresh_families (sid);
CREATE INDEX refresh_families_by_expiry ON refresh_families (expires_at);

CREATE TABLE refresh_tokens (
    hash       BYTEA   PRIMARY KEY NOT NULL,
    family_id  TEXT    NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    generation BIGINT  NOT NULL
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

-- The primary key is the index `revocations_for` looks entries up by.
CREATE TABLE revocations (
    kind       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    not_before BIGINT,
    expires_at BIGINT  NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX revocations_by_expiry ON revocations (expires_at);

CREATE TABLE signing_keys (
    kid        TEXT    PRIMARY KEY NOT NULL,
    seq        BIGINT  GENERATED ALWAYS AS IDENTITY,
    alg        TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    secret     BYTEA   NOT NULL
);
-- At most one current key: instances starting together agree on one first key
-- (`INSERT … ON CONFLICT DO NOTHING`), and no later write can make a second one current.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (status) WHERE status = 'current';
