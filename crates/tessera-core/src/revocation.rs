//! The revocation list: what an access JWT's signature cannot tell a verifier.
//!
//! Four kinds of entry: one token (`jti`), everything of one login session (`sid`),
//! everything of one principal issued before a cutoff (a user's password change, a client's
//! deletion), and everything signed by one key (`kid`, the emergency revocation of a
//! compromised key). Each entry carries the moment after which it is pointless — when every
//! token it could match has expired — so the list only ever holds revoked, still-unexpired
//! tokens and stays small enough to keep in memory and check on every verification without a
//! store lookup.

mod ids;

use crate::time::UnixTime;
use ids::IdMap;

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
    /// Every token of a principal issued (`iat`) before `not_before`: a token whose `sub` is
    /// it (a user's tokens, a client's own `client_credentials` tokens) or whose `client_id`
    /// is it (every token issued to a client, on behalf of any user). User and client ids are
    /// both random ids, so the two never name the same principal.
    User {
        /// The principal: a user id, or a client id.
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

    /// The form resource servers receive (the revocation stream's `data`, the catch-up
    /// list): `{"jti"|"sid"|"sub"+"not_before"|"kid", "exp"}`.
    #[must_use]
    pub fn to_wire(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Token { jti, expires_at } => json!({ "jti": jti, "exp": expires_at }),
            Self::Session { sid, expires_at } => json!({ "sid": sid, "exp": expires_at }),
            Self::User {
                user_id,
                not_before,
                expires_at,
            } => json!({ "sub": user_id, "not_before": not_before, "exp": expires_at }),
            Self::Key { kid, expires_at } => json!({ "kid": kid, "exp": expires_at }),
        }
    }

    /// Reads [`Revocation::to_wire`]'s form back: exactly one of `jti`, `sid`, `sub` (with
    /// `not_before`) or `kid`, and `exp`; `None` for anything else.
    #[must_use]
    pub fn from_wire(v: &serde_json::Value) -> Option<Self> {
        let obj = v.as_object()?;
        let text = |k: &str| {
            obj.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let time = |k: &str| obj.get(k).and_then(serde_json::Value::as_i64).map(UnixTime);
        let expires_at = time("exp")?;
        let named = ["jti", "sid", "sub", "kid"].map(|k| obj.contains_key(k));
        if named.iter().filter(|n| **n).count() != 1 {
            return None;
        }
        let r = match named {
            [true, ..] => Self::Token {
                jti: text("jti")?,
                expires_at,
            },
            [_, true, ..] => Self::Session {
                sid: text("sid")?,
                expires_at,
            },
            [_, _, true, _] => Self::User {
                user_id: text("sub")?,
                not_before: time("not_before")?,
                expires_at,
            },
            _ => Self::Key {
                kid: text("kid")?,
                expires_at,
            },
        };
        Some(r)
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
    /// `client_id`: the client the token was issued to (none for a session).
    pub client_id: Option<&'a str>,
    /// `iat`.
    pub iat: UnixTime,
}

/// The in-memory revocation list. Exact (see `ids` for how identifiers are kept compactly).
#[derive(Clone, Debug, Default)]
pub struct RevocationList {
    tokens: IdMap<UnixTime>,
    sessions: IdMap<UnixTime>,
    users: IdMap<(UnixTime, UnixTime)>,
    keys: IdMap<UnixTime>,
}

impl RevocationList {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry; repeated entries keep the widest reach (latest cutoff, latest expiry).
    /// Returns whether the list changed: a new entry, or one whose reach grew.
    pub fn insert(&mut self, r: &Revocation) -> bool {
        fn widen(slot: &mut UnixTime, to: UnixTime) -> bool {
            let grew = to > *slot;
            *slot = (*slot).max(to);
            grew
        }
        fn upsert(map: &mut IdMap<UnixTime>, key: &str, value: UnixTime) -> bool {
            match map.get_mut(key) {
                Some(slot) => widen(slot, value),
                None => {
                    map.insert(key, value);
                    true
                }
            }
        }
        match r {
            Revocation::Token { jti, expires_at } => upsert(&mut self.tokens, jti, *expires_at),
            Revocation::Session { sid, expires_at } => upsert(&mut self.sessions, sid, *expires_at),
            Revocation::User {
                user_id,
                not_before,
                expires_at,
            } => match self.users.get_mut(user_id) {
                // Each bound widens on its own: the latest cutoff, the latest expiry.
                Some((nb, exp)) => widen(nb, *not_before) | widen(exp, *expires_at),
                None => {
                    self.users.insert(user_id, (*not_before, *expires_at));
                    true
                }
            },
            Revocation::Key { kid, expires_at } => upsert(&mut self.keys, kid, *expires_at),
        }
    }

    /// Every entry, as revocations (in no particular order): the list to hand a new
    /// subscriber.
    #[must_use]
    pub fn entries(&self) -> Vec<Revocation> {
        let tokens = self.tokens.iter().map(|(jti, e)| Revocation::Token {
            jti,
            expires_at: *e,
        });
        let sessions = self.sessions.iter().map(|(sid, e)| Revocation::Session {
            sid,
            expires_at: *e,
        });
        let users = self
            .users
            .iter()
            .map(|(user_id, (nb, e))| Revocation::User {
                user_id,
                not_before: *nb,
                expires_at: *e,
            });
        let keys = self.keys.iter().map(|(kid, e)| Revocation::Key {
            kid,
            expires_at: *e,
        });
        tokens.chain(sessions).chain(users).chain(keys).collect()
    }

    /// Whether a token with these claims is revoked. Pure memory lookups: this runs on every
    /// JWT verification.
    #[must_use]
    pub fn is_revoked(&self, t: RevocationSubject<'_>) -> bool {
        let cut_off = |principal: &str| {
            self.users
                .get(principal)
                .is_some_and(|(not_before, _)| t.iat < *not_before)
        };
        self.tokens.contains(t.jti)
            || t.sid.is_some_and(|sid| self.sessions.contains(sid))
            || cut_off(t.sub)
            || t.client_id
                .is_some_and(|client| client != t.sub && cut_off(client))
    }

    /// Whether tokens signed by key `kid` are refused.
    #[must_use]
    pub fn is_key_revoked(&self, kid: &str) -> bool {
        self.keys.contains(kid)
    }

    /// Whether everything of login session `sid` is revoked (checked on every session use too,
    /// so the revocation record alone is enough to end a whole session tree).
    #[must_use]
    pub fn is_session_revoked(&self, sid: &str) -> bool {
        self.sessions.contains(sid)
    }

    /// Drops every entry that can no longer match an unexpired token.
    pub fn prune(&mut self, now: UnixTime) {
        self.tokens.retain(|exp| *exp > now);
        self.sessions.retain(|exp| *exp > now);
        self.users.retain(|(_, exp)| *exp > now);
        self.keys.retain(|exp| *exp > now);
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
            client_id: Some("app"),
            iat: UnixTime(iat),
        }
    }

    /// A client's cutoff ends every token issued to it before the cutoff, whoever its subject,
    /// and no token of another client; the client's own `client_credentials` tokens (`sub` is
    /// the client) end too.
    #[test]
    fn a_principal_cutoff_matches_tokens_issued_to_that_client() {
        let mut l = RevocationList::new();
        l.insert(&Revocation::User {
            user_id: "app".into(),
            not_before: UnixTime(50),
            expires_at: UnixTime(700),
        });
        assert!(l.is_revoked(subject("j1", None, 49)));
        assert!(
            !l.is_revoked(subject("j1", None, 50)),
            "issued at the cutoff"
        );
        let other_client = RevocationSubject {
            client_id: Some("other-app"),
            ..subject("j1", None, 49)
        };
        assert!(!l.is_revoked(other_client));
        let session = RevocationSubject {
            client_id: None,
            ..subject("j1", None, 49)
        };
        assert!(!l.is_revoked(session));
        let own = RevocationSubject {
            sub: "app",
            ..subject("j1", None, 49)
        };
        assert!(l.is_revoked(own));
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

    #[test]
    fn insert_reports_whether_the_list_changed() {
        let mut l = RevocationList::new();
        let user = |nb, exp| Revocation::User {
            user_id: "alice".into(),
            not_before: UnixTime(nb),
            expires_at: UnixTime(exp),
        };
        assert!(l.insert(&user(50, 700)));
        assert!(!l.insert(&user(50, 700)), "the same entry again");
        assert!(!l.insert(&user(40, 600)), "a narrower entry");
        assert!(l.insert(&user(60, 650)), "a later cutoff");
        assert!(l.insert(&user(10, 800)), "a later expiry");
        assert_eq!(l.entries(), [user(60, 800)]);
        let jti = |exp| Revocation::Token {
            jti: "j".into(),
            expires_at: UnixTime(exp),
        };
        assert!(l.insert(&jti(5)));
        assert!(!l.insert(&jti(4)));
        assert!(l.insert(&jti(6)));
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn the_wire_form_round_trips_and_refuses_ambiguity() {
        let all = [
            Revocation::Token {
                jti: "j".into(),
                expires_at: UnixTime(10),
            },
            Revocation::Session {
                sid: "s".into(),
                expires_at: UnixTime(11),
            },
            Revocation::User {
                user_id: "u".into(),
                not_before: UnixTime(5),
                expires_at: UnixTime(12),
            },
            Revocation::Key {
                kid: "k".into(),
                expires_at: UnixTime(13),
            },
        ];
        for r in &all {
            assert_eq!(Revocation::from_wire(&r.to_wire()).as_ref(), Some(r));
        }
        assert_eq!(
            all[2].to_wire(),
            serde_json::json!({ "sub": "u", "not_before": 5, "exp": 12 })
        );
        for bad in [
            serde_json::json!({ "jti": "j", "sid": "s", "exp": 1 }),
            serde_json::json!({ "jti": "j" }),
            serde_json::json!({ "sub": "u", "exp": 1 }),
            serde_json::json!({ "exp": 1 }),
            serde_json::json!({ "kid": 7, "exp": 1 }),
            serde_json::json!(["jti"]),
        ] {
            assert_eq!(Revocation::from_wire(&bad), None, "{bad}");
        }
    }
}
