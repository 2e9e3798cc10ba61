-- The audit log: security events, newest last. `seq` (an identity, never reused after the
-- oldest rows are pruned) is the paging cursor; `username` is NULL for events of no user
-- (key rotation) and for logins naming no existing user. Never a secret, token or hash.
CREATE TABLE audit_events (
    seq      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       BIGINT  NOT NULL,
    kind     TEXT    NOT NULL,
    username TEXT,
    ip       TEXT,
    detail   TEXT    NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user ON audit_events (username, seq);
CREATE INDEX audit_events_kind ON audit_events (kind, seq);
