//! A bench user and its credentials, made through the server's own flows: what `tessera bench`
//! and the benches under `benches/` (which include this file by path, as they include
//! `loadgen.rs`) load a server with.

use tessera_core::opaque::random_id;
use tessera_server::AppState;
use tessera_server::service::{self, ClientContext};

/// The password of every bench user (it passes the password policy).
pub const PASSWORD: &str = "plum tractor velvet ocean";

/// A name no earlier run can have taken (a username, a namespace): `prefix` and a random
/// id, lower-case alphanumeric (what the username rules and schema names accept).
///
/// # Errors
/// If the system's random generator fails.
pub fn fresh_name(prefix: &str) -> Result<String, tessera_core::opaque::OpaqueError> {
    Ok(format!(
        "{prefix}{}",
        random_id()?.to_lowercase().replace(['-', '_'], "")
    ))
}

/// A new user's session tokens and access JWTs.
pub struct BenchUser {
    /// Its username (password [`PASSWORD`]).
    pub username: String,
    /// One browser session token per session asked for.
    pub sessions: Vec<String>,
    /// Access JWTs of the user, bound to its first session.
    pub jwts: Vec<String>,
}

/// Registers a new user on `state`, starts `sessions` browser sessions (at least one) and
/// issues `jwts` access tokens.
///
/// # Errors
/// A failing flow, as a sentence.
pub async fn bench_user(
    state: &AppState,
    sessions: usize,
    jwts: usize,
) -> Result<BenchUser, String> {
    let ctx = ClientContext::default();
    let name = fresh_name("u").map_err(|e| e.to_string())?;
    let user = service::register(state, &name, PASSWORD.into(), false, &ctx)
        .await
        .map_err(|e| format!("registering the bench user: {e}"))?;
    let mut tokens = Vec::with_capacity(sessions.max(1));
    let mut sid = None;
    for _ in 0..sessions.max(1) {
        let browser = service::start_browser_session(state, &user, &ctx)
            .await
            .map_err(|e| format!("starting a session: {e}"))?;
        sid.get_or_insert(browser.session.id);
        tokens.push(browser.token.expose_secret().to_owned());
    }
    let jwts = (0..jwts)
        .map(|_| {
            service::issue_access(
                state,
                &user.id,
                Some(&user.username),
                sid.as_deref(),
                None,
                "first-party",
                None,
            )
            .map_err(|e| format!("issuing an access token: {e}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(BenchUser {
        username: user.username,
        sessions: tokens,
        jwts,
    })
}
