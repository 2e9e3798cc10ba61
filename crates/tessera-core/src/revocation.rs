//! The revocation list: what an access JWT's signature cannot tell a verifier.
//!
//! Four kinds of entry: one token (`jti`), everything of one login session (`sid`),
//! everything of one user issued before a cutoff (a password change), and everything signed
//! by one key (`kid`, the emergency revocation of a compromised key). Each entry carries the
//! moment after which it is pointless — when every token it could match has expired — so the
//! list only ever holds revoked, still-unexpired tokens and stays small enough to keep in memory
//! and check on every verification without a store lookup.

use std::collections::HashMap;

use crate::time::UnixTime;

/// One revocation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revocation {
    /// A single access token, by `jti`.
    Token {
        /// The revoked `jti`.
        jti: String,
        /// When the token expires anyway.
        expires_at: UnixTime,
    },
    /// Every token carrying this `sid`.
    Session {
        /// The revoked session id.
        sid: String,
        /// When the last token of the session expires anyway.
        expires_at: UnixTime,
    },
    /// Every token of a user issued (`iat`) before `not_before`.
    User {
        /// The user (`sub`).
        user_id: String,
        /// Tokens issued strictly before this are revoked.
        not_before: UnixTime,
        /// When the last token issued before the cutoff expires anyway.
        expires_at: UnixTime,
    },
    /// Every token signed by this key.
    Key {
        /// The revoked key id.
        kid: String,
        /// When the last token signed by the key expires anyway.
        expires_at: UnixTime,
    },
}

impl Revocation {
    /// When this entry may be forgotten.
    #[must_use]
    pub fn expires_at(&self) -> UnixTime {
        match self {
            Self::Token { expires_at, .. }
            | Self::Session { expires_at, .. }
            | Self::User { expires_at, .. }
            | Self::Key { expires_at, .. } => *expires_at,
        }
    }
}

/// The claims of an access token that revocation looks at.
#[derive(Clone, Copy, Debug)]
pub struct RevocationSubject<'a> {
    /// `jti`.
    pub jti: &'a str,
    /// `sid`, if the token belongs to a login session.
    pub sid: Option<&'a str>,
    /// `sub`.
    pub sub: &'a str,
    /// `iat`.
    pub iat: UnixTime,
}

/// The in-memory revocation list.
#[derive(Clone, Debug, Default)]
pub struct RevocationList {
    tokens: HashMap<String, UnixTime>,
    sessions: HashMap<String, UnixTime>,
    users: HashMap<String, (UnixTime, UnixTime)>,
    keys: HashMap<String, UnixTime>,
}

impl RevocationList {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry; repeated entries keep the widest reach (latest cutoff, latest expiry).
    pub fn insert(&mut self, r: &Revocation) {
        match r {
            Revocation::Token { jti, expires_at } => {
                let e = self.tokens.entry(jti.clone()).or_insert(*expires_at);
                *e = (*e).max(*expires_at);
            }
            Revocation::Session { sid, expires_at } => {
                let e = self.sessions.entry(sid.clone()).or_insert(*expires_at);
                *e = (*e).max(*expires_at);
            }
            Revocation::User {
                user_id,
                not_before,
                expires_at,
            } => {
                let e = self
                    .users
                    .entry(user_id.clone())
                    .or_insert((*not_before, *expires_at));
                *e = (e.0.max(*not_before), e.1.max(*expires_at));
            }
            Revocation::Key { kid, expires_at } => {
                let e = self.keys.entry(kid.clone()).or_insert(*expires_at);
                *e = (*e).max(*expires_at);
            }
        }
    }

    /// Whether a token with these claims is revoked. Pure memory lookups: this runs on every
    /// JWT verification.
    #[must_use]
    pub fn is_revoked(&self, t: RevocationSubject<'_>) -> bool {
        self.tokens.contains_key(t.jti)
            || t.sid.is_some_and(|sid| self.sessions.contains_key(sid))
            || self
                .users
                .get(t.sub)
                .is_some_and(|(not_before, _)| t.iat < *not_before)
    }

    /// Whether tokens signed by key `kid` are refused.
    #[must_use]
    pub fn is_key_revoked(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// Whether everything of login session `sid` is revoked (checked on every session use too,
    /// so the revocation record alone is enough to end a whole session tree).
    #[must_use]
    pub fn is_session_revoked(&self, sid: &str) -> bool {
        self.sessions.contains_key(sid)
    }

    /// Drops every entry that can no longer match an unexpired token.
    pub fn prune(&mut self, now: UnixTime) {
        self.tokens.retain(|_, exp| *exp > now);
        self.sessions.retain(|_, exp| *exp > now);
        self.users.retain(|_, (_, exp)| *exp > now);
        self.keys.retain(|_, exp| *exp > now);
    }

    /// Number of entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tokens.len() + self.sessions.len() + self.users.len() + self.keys.len()
    }

    /// Whether the list is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject<'a>(jti: &'a str, sid: Option<&'a str>, iat: i64) -> RevocationSubject<'a> {
        RevocationSubject {
            jti,
            sid,
            sub: "alice",
            iat: UnixTime(iat),
        }
    }

    #[test]
    fn each_kind_matches_what_it_names() {
        let mut l = RevocationList::new();
        l.insert(&Revocation::Token {
            jti: "j1".into(),
            expires_at: UnixTime(100),
        });
        l.insert(&Revocation::Session {
            sid: "s1".into(),
            expires_at: UnixTime(100),
        });
        l.insert(&Revocation::User {
            user_id: "alice".into(),
            not_before: UnixTime(50),
            expires_at: UnixTime(700),
        });
        assert!(l.is_revoked(subject("j1", None, 60)));
        assert!(l.is_revoked(subject("j2", Some("s1"), 60)));
        assert!(l.is_revoked(subject("j2", None, 49)));
        assert!(
            !l.is_revoked(subject("j2", Some("s2"), 50)),
            "issued at the cutoff survives"
        );
    }

    #[test]
    fn key_revocations_are_by_kid_and_expire() {
        let mut l = RevocationList::new();
        l.insert(&Revocation::Key {
            kid: "k1".into(),
            expires_at: UnixTime(100),
        });
        assert!(l.is_key_revoked("k1"));
        assert!(!l.is_key_revoked("k2"));
        l.prune(UnixTime(100));
        assert!(!l.is_key_revoked("k1"));
    }

    #[test]
    fn prune_keeps_only_unexpired_entries() {
        let mut l = RevocationList::new();
        l.insert(&Revocation::Token {
            jti: "a".into(),
            expires_at: UnixTime(10),
        });
        l.insert(&Revocation::Token {
            jti: "b".into(),
            expires_at: UnixTime(20),
        });
        l.prune(UnixTime(10));
        assert_eq!(l.len(), 1);
        assert!(!l.is_revoked(subject("a", None, 0)));
        assert!(l.is_revoked(subject("b", None, 0)));
    }

    #[test]
    fn repeated_user_cutoffs_keep_the_latest() {
        let mut l = RevocationList::new();
        l.insert(&Revocation::User {
            user_id: "alice".into(),
            not_before: UnixTime(50),
            expires_at: UnixTime(700),
        });
        l.insert(&Revocation::User {
            user_id: "alice".into(),
            not_before: UnixTime(40),
            expires_at: UnixTime(600),
        });
        assert!(l.is_revoked(subject("j", None, 45)));
        l.prune(UnixTime(650));
        assert!(l.is_revoked(subject("j", None, 45)));
    }
}
