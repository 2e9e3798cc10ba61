-- Tessera's SQLite schema. Times are INTEGER Unix seconds; token hashes are 32-byte BLOBs
-- (SHA-256 of the opaque token: the store never sees a usable token).

CREATE TABLE users (
    id            TEXT    PRIMARY KEY NOT NULL,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY NOT NULL,
    token_hash BLOB    UNIQUE,
    user_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    user_agent TEXT,
    ip         TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at);

CREATE TABLE refresh_families (
    id               TEXT    PRIMARY KEY NOT NULL,
    user_id          TEXT    NOT NULL,
    sid              TEXT    NOT NULL,
    client_id        TEXT,
    scope            TEXT,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    generation       INTEGER NOT NULL,
    rotated_at       INTEGER,
    sealed_successor BLOB,
    revoked_at       INTEGER
);
CREATE INDEX refresh_families_by_sid ON refresh_families (sid);
CREATE INDEX refresh_families_by_expiry ON refresh_families (expires_at);

CREATE TABLE refresh_tokens (
    hash       BLOB    PRIMARY KEY NOT NULL,
    family_id  TEXT    NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    generation INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

CREATE TABLE revocations (
    kind       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    not_before INTEGER,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX revocations_by_expiry ON revocations (expires_at);

CREATE TABLE signing_keys (
    kid        TEXT    PRIMARY KEY NOT NULL,
    alg        TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    secret     BLOB    NOT NULL
);
