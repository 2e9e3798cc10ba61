//! The security events Tessera keeps in its audit log: the closed set of kinds.
//!
//! Design decision: the kinds are one enum, so the store, the admin API's `kind=` filter, the
//! CLI's `--kind` and the OpenAPI description all read the same list, and a new kind is a new
//! variant the compiler walks through every `match`. What an event carries besides its kind
//! (time, user, address, a short detail) is the store's record; this module only names kinds.

use std::fmt;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A login succeeded (cookie login or the password grant).
    Login,
    /// A login was refused; the detail says why (`bad_password`, `unknown_user`,
    /// `throttled`, `disabled`, …) — the caller was only told "invalid credentials".
    LoginFailed,
    /// A session was logged out by its holder.
    Logout,
    /// A session tree was ended by someone other than its holder's logout (sign out of one
    /// session or every other, an admin, a password change).
    SessionRevoked,
    /// A retired refresh token was presented again: its session tree was revoked.
    RefreshReuse,
    /// A user changed their password.
    PasswordChanged,
    /// A user was disabled: every credential ended, logins refused.
    UserDisabled,
    /// The signing keys rotated (by an operator or the schedule).
    KeyRotated,
    /// A signing key was revoked.
    KeyRevoked,
    /// An OAuth client was registered.
    ClientCreated,
    /// An OAuth client was deleted.
    ClientDeleted,
    /// An administrator did something through the admin API; the detail says what.
    Admin,
}

impl EventKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [Self; 12] = [
        Self::Login,
        Self::LoginFailed,
        Self::Logout,
        Self::SessionRevoked,
        Self::RefreshReuse,
        Self::PasswordChanged,
        Self::UserDisabled,
        Self::KeyRotated,
        Self::KeyRevoked,
        Self::ClientCreated,
        Self::ClientDeleted,
        Self::Admin,
    ];

    /// The kind's name, as stored and as the API shows it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::LoginFailed => "login_failed",
            Self::Logout => "logout",
            Self::SessionRevoked => "session_revoked",
            Self::RefreshReuse => "refresh_reuse",
            Self::PasswordChanged => "password_changed",
            Self::UserDisabled => "user_disabled",
            Self::KeyRotated => "key_rotated",
            Self::KeyRevoked => "key_revoked",
            Self::ClientCreated => "client_created",
            Self::ClientDeleted => "client_deleted",
            Self::Admin => "admin",
        }
    }

    /// The kind with this name; `None` for any other string.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Every name, for descriptions and error messages.
    #[must_use]
    pub fn names() -> Vec<&'static str> {
        Self::ALL.map(Self::as_str).to_vec()
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name_and_nothing_else_does() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        let names = EventKind::names();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        for other in ["", "LOGIN", "login ", "logins", "admin\0"] {
            assert_eq!(EventKind::parse(other), None, "{other:?}");
        }
    }
}
