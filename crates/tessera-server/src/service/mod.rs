//! The flows: one function per thing a caller can do (register, log in, refresh, revoke,
//! change a password…). Handlers and the CLI both call these, so each rule lives once.
//!
//! Design decision: flows never build HTTP responses and handlers never touch the store — a
//! flow takes parsed input and returns a domain value or an [`ApiError`]; the routes turn that
//! into HTTP. Revocation follows one order everywhere: first the durable revocation record (the
//! commit point — from then on the in-memory check refuses the session and every JWT carrying
//! its `sid`), then the clean-up of refresh families and the session row.

mod access;
mod accounts;
mod admin;
mod audit;
mod authorize;
mod clients;
mod exchange;
mod grants;
mod refresh_grant;
mod revocation;
mod sessions;

pub use access::issue_access;
pub use accounts::{change_password, device_cookie, login, register, user};
pub(crate) use admin::record_scheduled;
pub use admin::{
    KeySummary, MAX_USER_PAGE, disable_user, end_session, find_users, revoke_key,
    revoke_user_credentials, rotate_keys, signing_keys, user_sessions,
};
pub(crate) use audit::prune as prune_audit;
pub use audit::{Actor, audit_events};
pub use authorize::{Authorize, Consent, Decision, authorize, decide, redirect_origin};
pub use clients::{
    authenticate_client, client_credentials, clients, delete_client, identify_public_client,
    introspect, register_client,
};
pub use exchange::ACCESS_TOKEN_TYPE;
pub use grants::{FIRST_PARTY_CLIENT, GrantType, Granted, TokenRequest, TokenResponse, token};
pub use refresh_grant::refresh;
pub use revocation::{revoke_access, revoke_token};
pub use sessions::Dead;
pub use sessions::{
    BrowserSession, active_sessions, app_names, logout, revoke_own_session, revoke_session,
    revoke_session_tree, revoke_user, sign_in, sign_out_others, sign_up, start_browser_session,
    try_use_session, use_session,
};

use crate::error::ApiError;

/// Who is asking, as far as the request tells: for throttling and the session list. `Debug`
/// never prints the device cookie (it exempts its holder from the account's throttle).
#[derive(Clone, Default)]
pub struct ClientContext {
    /// The client's address: the socket's peer, or the client a trusted proxy names
    /// ([`crate::extract::client_ip`]).
    pub ip: Option<std::net::IpAddr>,
    /// `User-Agent`, truncated for display.
    pub user_agent: Option<String>,
    /// The device cookie, if exactly one was sent.
    pub device_cookie: Option<String>,
}

impl std::fmt::Debug for ClientContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientContext")
            .field("ip", &self.ip)
            .field("user_agent", &self.user_agent)
            .field(
                "device_cookie",
                &self.device_cookie.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string().into())
}
