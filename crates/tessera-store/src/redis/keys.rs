//! The Redis key layout: every key name [`super::RedisStore`] uses, built in one place.
//!
//! Design decision: keys that one script changes atomically share a cluster **hash tag** (the
//! part in `{…}`), so each atomic step is single-slot; everything else is hashed whole and
//! spreads over the cluster. With namespace `ns`, user `U` (hex-encoded as `<U>`, so no user id
//! can end a hash tag early or make two keys collide) and session id `S`:
//!
//! | key | type | slot | holds |
//! |---|---|---|---|
//! | `ns:{u:<U>}:s:S` | hash | user's | the session record (listing, sweeping, lookup by id) |
//! | `ns:{u:<U>}:idx` | sorted set | user's | the user's sessions: member `<seq hex>:S`, score `created_at` |
//! | `ns:{u:<U>}:seq` | string | user's | insertion counter, breaking ties in `created_at` |
//! | `ns:sc:<token hash hex>` | hash | own | a copy of the record, for lookup by token in one round trip |
//! | `ns:si:S` | string | own | pointer `<U>`, for lookup by session id |
//! | `ns:su` | set | own | users that may have sessions, for the dead-session sweep |
//! | `{ns:rev}:z` | sorted set | revocations' | member `kind:key`, score `expires_at` |
//! | `{ns:rev}:h` | hash | revocations' | field `kind:key` → `expires_at[:not_before]` |
//! | `ns:ac:K` | string | own | attempt counter `K` (its TTL is the window) |
//!
//! Revocations are published on channel `ns:revocations`. The kinds are `jti`, `sid` and `user`.

use crate::{BoxError, StoreError};

/// The longest namespace accepted.
const MAX_NAMESPACE: usize = 64;

/// Key names under one namespace.
#[derive(Clone, Debug)]
pub struct Keys {
    ns: String,
}

impl Keys {
    /// The keys of namespace `ns`: 1–64 ASCII letters, digits, `_`, `-` or `.` (nothing a
    /// hash tag or a `SCAN` pattern would read specially).
    ///
    /// # Errors
    /// [`StoreError::Backend`] for any other namespace.
    pub fn new(ns: &str) -> Result<Self, StoreError> {
        let valid = !ns.is_empty()
            && ns.len() <= MAX_NAMESPACE
            && ns
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if valid {
            Ok(Self { ns: ns.to_owned() })
        } else {
            Err(StoreError::Backend(BoxError::from(
                "invalid Redis namespace: use 1-64 letters, digits, '_', '-' or '.'",
            )))
        }
    }

    /// The namespace.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Session record of `user_id`'s session `sid`.
    #[must_use]
    pub fn session(&self, user_id: &str, sid: &str) -> String {
        self.session_hex(&hex(user_id), sid)
    }

    pub(super) fn session_hex(&self, user_hex: &str, sid: &str) -> String {
        format!("{}:{{u:{user_hex}}}:s:{sid}", self.ns)
    }

    /// Index of `user_id`'s sessions.
    #[must_use]
    pub fn user_index(&self, user_id: &str) -> String {
        self.user_index_hex(&hex(user_id))
    }

    pub(super) fn user_index_hex(&self, user_hex: &str) -> String {
        format!("{}:{{u:{user_hex}}}:idx", self.ns)
    }

    pub(super) fn user_seq_hex(&self, user_hex: &str) -> String {
        format!("{}:{{u:{user_hex}}}:seq", self.ns)
    }

    /// Copy of the session record whose token hash (hex) this is.
    #[must_use]
    pub fn token(&self, token_hex: &str) -> String {
        format!("{}:sc:{token_hex}", self.ns)
    }

    /// Pointer from a session id to its user.
    #[must_use]
    pub fn session_owner(&self, sid: &str) -> String {
        format!("{}:si:{sid}", self.ns)
    }

    /// Set of users that may have sessions.
    #[must_use]
    pub fn session_users(&self) -> String {
        format!("{}:su", self.ns)
    }

    /// Revocations ordered by expiry.
    #[must_use]
    pub fn revocation_list(&self) -> String {
        format!("{{{}:rev}}:z", self.ns)
    }

    /// Revocations by `kind:key`.
    #[must_use]
    pub fn revocation_index(&self) -> String {
        format!("{{{}:rev}}:h", self.ns)
    }

    /// The pub/sub channel revocations are announced on.
    #[must_use]
    pub fn channel(&self) -> String {
        format!("{}:revocations", self.ns)
    }

    /// Replay marker `key` (a DPoP proof seen).
    #[must_use]
    pub fn replay(&self, key: &str) -> String {
        format!("{}:rp:{key}", self.ns)
    }

    /// Attempt counter `key`.
    #[must_use]
    pub fn attempts(&self, key: &str) -> String {
        format!("{}:ac:{key}", self.ns)
    }
}

/// Lower-case hex of a string's bytes.
pub(super) fn hex(s: &str) -> String {
    use std::fmt::Write;
    s.bytes()
        .fold(String::with_capacity(s.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_keys_share_one_hash_tag() {
        let k = Keys::new("ns").unwrap_or_else(|_| unreachable!());
        assert_eq!(k.session("a}b", "s1"), "ns:{u:617d62}:s:s1");
        assert_eq!(k.user_index("a}b"), "ns:{u:617d62}:idx");
        assert_eq!(k.revocation_list(), "{ns:rev}:z");
        assert_eq!(k.revocation_index(), "{ns:rev}:h");
    }

    #[test]
    fn namespaces_that_could_break_tags_are_refused() {
        for bad in ["", "a{b", "a}b", "a*", "a b", &"x".repeat(65)] {
            assert!(Keys::new(bad).is_err(), "{bad:?}");
        }
        assert!(Keys::new("t0a_b-c.d").is_ok());
    }
}
