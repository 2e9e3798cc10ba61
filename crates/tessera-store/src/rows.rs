//! How records map to SQL columns, shared by the SQLite and PostgreSQL backends (which differ
//! in dialect, not in what they store).

use tessera_core::revocation::Revocation;
use tessera_core::time::UnixTime;

use crate::StoreError;

/// A revocation as `(kind, key, not_before, expires_at)`; `not_before` only for user cutoffs.
pub(crate) fn revocation_columns(r: &Revocation) -> (&'static str, &str, Option<i64>, i64) {
    match r {
        Revocation::Token { jti, expires_at } => ("token", jti, None, expires_at.0),
        Revocation::Session { sid, expires_at } => ("session", sid, None, expires_at.0),
        Revocation::User {
            user_id,
            not_before,
            expires_at,
        } => ("user", user_id, Some(not_before.0), expires_at.0),
        Revocation::Key { kid, expires_at } => ("key", kid, None, expires_at.0),
    }
}

/// The inverse of [`revocation_columns`].
pub(crate) fn revocation_from_columns(
    kind: &str,
    key: String,
    not_before: Option<i64>,
    expires_at: i64,
) -> Result<Revocation, StoreError> {
    let expires_at = UnixTime(expires_at);
    match (kind, not_before) {
        ("token", _) => Ok(Revocation::Token {
            jti: key,
            expires_at,
        }),
        ("session", _) => Ok(Revocation::Session {
            sid: key,
            expires_at,
        }),
        ("user", Some(nb)) => Ok(Revocation::User {
            user_id: key,
            not_before: UnixTime(nb),
            expires_at,
        }),
        ("key", _) => Ok(Revocation::Key {
            kid: key,
            expires_at,
        }),
        _ => Err(StoreError::Corrupt("revocations")),
    }
}
