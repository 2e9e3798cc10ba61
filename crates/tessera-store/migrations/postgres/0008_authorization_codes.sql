-- Authorization codes (OAuth 2.1 §4.1), under the SHA-256 of their `tac_` token. `sid` is the
-- session the code's tokens will carry, chosen when the code is made, so a second redemption
-- can end what the first issued; `credential_epoch` the user's when they agreed. `used_at` is
-- set once, by the first redemption.
CREATE TABLE authorization_codes (
    code_hash      BYTEA    PRIMARY KEY NOT NULL,
    client_id      TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    credential_epoch BIGINT NOT NULL,
    sid            TEXT    NOT NULL,
    scope          TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    CHECK (octet_length(code_hash) = 32)
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

-- An app authorization names the client it was granted to (NULL for every other session).
ALTER TABLE sessions ADD COLUMN client_id TEXT;
