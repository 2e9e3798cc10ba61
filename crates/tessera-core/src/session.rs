//! Login sessions: the root of Tessera's one session tree.
//!
//! Every credential Tessera issues for a user hangs off a [`Session`]: the browser cookie *is*
//! one, and a password-grant login creates one that owns the refresh family and whose id is the
//! `sid` of every access token minted from it. Revoking a session therefore revokes everything
//! derived from it. A session expires after an idle period or an absolute lifetime, whichever
//! comes first; "last seen" is written at most once per touch interval, so a busy client does not
//! turn every request into a store write.

use crate::opaque::TokenHash;
use crate::time::UnixTime;

/// How a session was created, which decides its timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// A browser (cookie) session, or an opaque bearer session token.
    Browser,
    /// An app login through the OAuth2 password grant; it owns one refresh-token family.
    App,
}

impl SessionKind {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Browser => "browser",
            Self::App => "app",
        }
    }

    /// Parses the stored name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "browser" => Some(Self::Browser),
            "app" => Some(Self::App),
            _ => None,
        }
    }
}

/// Timeouts of sessions, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A browser session ends after this long without use (default 12 h).
    pub browser_idle_secs: i64,
    /// A browser session ends this long after login, used or not (default 7 days).
    pub browser_absolute_secs: i64,
    /// An app session (and its refresh family) ends this long after login (default 30 days);
    /// its idle limit is the same, as each refresh counts as use.
    pub app_absolute_secs: i64,
    /// "Last seen" is written at most this often (default 60 s).
    pub touch_interval_secs: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            browser_idle_secs: 12 * 3600,
            browser_absolute_secs: 7 * 24 * 3600,
            app_absolute_secs: 30 * 24 * 3600,
            touch_interval_secs: 60,
        }
    }
}

impl SessionPolicy {
    fn idle_secs(&self, kind: SessionKind) -> i64 {
        match kind {
            SessionKind::Browser => self.browser_idle_secs,
            SessionKind::App => self.app_absolute_secs,
        }
    }

    fn absolute_secs(&self, kind: SessionKind) -> i64 {
        match kind {
            SessionKind::Browser => self.browser_absolute_secs,
            SessionKind::App => self.app_absolute_secs,
        }
    }
}

/// Why a session is no longer usable.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Past its absolute lifetime.
    #[error("session expired")]
    Expired,
    /// Unused for longer than the idle timeout.
    #[error("session idle timeout")]
    Idle,
}

/// A login session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Public identifier: the `sid` claim, and what "revoke session {id}" names.
    pub id: String,
    /// Hash of the bearer token (`tss_…`), for browser sessions; app sessions have none.
    pub token_hash: Option<TokenHash>,
    /// The user this session authenticates.
    pub user_id: String,
    /// How it was created.
    pub kind: SessionKind,
    /// Login time.
    pub created_at: UnixTime,
    /// Last recorded use (coarse: see [`SessionPolicy::touch_interval_secs`]).
    pub last_seen: UnixTime,
    /// The absolute end.
    pub expires_at: UnixTime,
    /// `User-Agent` at login, for the "active sessions" page.
    pub user_agent: Option<String>,
    /// Client address at login.
    pub ip: Option<String>,
    /// For an app authorization (the authorization-code flow), the client it was granted to.
    pub client_id: Option<String>,
}

impl Session {
    /// A new session starting `now`.
    #[must_use]
    pub fn new(
        id: String,
        token_hash: Option<TokenHash>,
        user_id: String,
        kind: SessionKind,
        now: UnixTime,
        policy: &SessionPolicy,
    ) -> Self {
        Self {
            id,
            token_hash,
            user_id,
            kind,
            created_at: now,
            last_seen: now,
            expires_at: now.plus(policy.absolute_secs(kind)),
            user_agent: None,
            ip: None,
            client_id: None,
        }
    }

    /// Whether the session may be used at `now`.
    ///
    /// # Errors
    /// [`SessionError::Expired`] past the absolute lifetime, [`SessionError::Idle`] past the
    /// idle timeout.
    pub fn check(&self, now: UnixTime, policy: &SessionPolicy) -> Result<(), SessionError> {
        if now >= self.expires_at {
            return Err(SessionError::Expired);
        }
        if now >= self.last_seen.plus(policy.idle_secs(self.kind)) {
            return Err(SessionError::Idle);
        }
        Ok(())
    }

    /// Whether a use at `now` should be written back as "last seen".
    #[must_use]
    pub fn needs_touch(&self, now: UnixTime, policy: &SessionPolicy) -> bool {
        now.since(self.last_seen) >= policy.touch_interval_secs
    }

    /// The moment after which no record of this session needs to be kept: the earlier of the
    /// absolute end and the idle end.
    #[must_use]
    pub fn dead_at(&self, policy: &SessionPolicy) -> UnixTime {
        self.expires_at
            .min(self.last_seen.plus(policy.idle_secs(self.kind)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn browser(now: i64) -> Session {
        Session::new(
            "s".into(),
            None,
            "u".into(),
            SessionKind::Browser,
            UnixTime(now),
            &SessionPolicy::default(),
        )
    }

    #[test]
    fn idle_timeout_applies_from_last_seen() {
        let p = SessionPolicy::default();
        let mut s = browser(1_000);
        assert_eq!(
            s.check(UnixTime(1_000 + p.browser_idle_secs - 1), &p),
            Ok(())
        );
        assert_eq!(
            s.check(UnixTime(1_000 + p.browser_idle_secs), &p),
            Err(SessionError::Idle)
        );
        s.last_seen = UnixTime(1_000 + 3600);
        assert_eq!(s.check(UnixTime(1_000 + p.browser_idle_secs), &p), Ok(()));
    }

    #[test]
    fn absolute_timeout_wins_over_activity() {
        let p = SessionPolicy::default();
        let mut s = browser(0);
        s.last_seen = UnixTime(p.browser_absolute_secs - 1);
        assert_eq!(
            s.check(UnixTime(p.browser_absolute_secs), &p),
            Err(SessionError::Expired)
        );
    }

    #[test]
    fn touch_at_most_once_per_interval() {
        let p = SessionPolicy::default();
        let s = browser(0);
        assert!(!s.needs_touch(UnixTime(59), &p));
        assert!(s.needs_touch(UnixTime(60), &p));
    }

    #[test]
    fn app_sessions_live_as_long_as_refresh_tokens() {
        let p = SessionPolicy::default();
        let s = Session::new(
            "s".into(),
            None,
            "u".into(),
            SessionKind::App,
            UnixTime(0),
            &p,
        );
        assert_eq!(s.expires_at, UnixTime(30 * 24 * 3600));
        assert_eq!(s.check(UnixTime(20 * 24 * 3600), &p), Ok(()));
        assert_eq!(s.dead_at(&p), UnixTime(30 * 24 * 3600));
    }
}
