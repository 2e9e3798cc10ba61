-- DPoP (RFC 9449). `jkt`: the RFC 7638 thumbprint of the key a refresh family is bound to
-- (NULL for an unbound family). `replay_markers`: proof identifiers already seen (a digest of
-- the key thumbprint and the proof's `jti`), each until the proof is too old to be accepted.
ALTER TABLE refresh_families ADD COLUMN jkt TEXT;

CREATE TABLE replay_markers (
    key        TEXT    PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX replay_markers_by_expiry ON replay_markers (expires_at);
