//! Users, cookie sessions, the session list and password change.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::session::{Session, SessionKind};
use tessera_core::time::UnixTime;
use utoipa::ToSchema;

use crate::auth::{Authenticated, Credential, SameOrigin, csrf_token};
use crate::error::ApiError;
use crate::extract::{Input, SESSION_COOKIE};
use crate::routes::openapi::{
    BadRequest, CsrfRejected, InvalidCredentials, NotFound, PayloadTooLarge, RateLimited,
    Unauthorized, Unavailable, UnsupportedMediaType, UsernameTaken,
};
use crate::service::{self, ClientContext};
use crate::state::AppState;

/// A username and its password.
#[derive(Deserialize, ToSchema)]
pub(super) struct Credentials {
    username: String,
    #[schema(format = Password)]
    password: String,
}

/// A registered user.
#[derive(Serialize, ToSchema)]
pub(super) struct User {
    id: String,
    /// Normalised: trimmed and lower-cased.
    username: String,
}

/// Register a user.
///
/// The username is trimmed and lower-cased; it must be 3-64 characters of `a-z 0-9 . _ - @`.
/// The password must meet the policy (at least 15 characters, not common, not the username).
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "account",
    operation_id = "registerUser",
    request_body(content(
        (Credentials = "application/json"),
        (Credentials = "application/x-www-form-urlencoded")
    )),
    responses(
        (status = 201, description = "The user was created.", body = User),
        (status = 400, response = BadRequest),
        (status = 409, response = UsernameTaken),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn register(
    State(state): State<AppState>,
    client: ClientContext,
    Input(body): Input<Credentials>,
) -> Result<Response, ApiError> {
    let user = service::register(&state, &body.username, body.password, false, &client).await?;
    Ok((
        StatusCode::CREATED,
        Json(User {
            id: user.id,
            username: user.username,
        }),
    )
        .into_response())
}

/// What kind of login a session is.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = SessionKind)]
pub(super) enum Kind {
    /// A browser (cookie) session, or an opaque bearer session token.
    Browser,
    /// An app login through the OAuth2 password grant.
    App,
}

/// A login session. Never carries its token.
#[derive(Serialize, ToSchema)]
#[schema(as = Session)]
pub(super) struct SessionView {
    id: String,
    user_id: String,
    kind: Kind,
    /// Seconds since the Unix epoch.
    #[schema(value_type = i64)]
    created_at: UnixTime,
    /// Written at most once a minute, not on every request.
    #[schema(value_type = i64)]
    last_seen: UnixTime,
    /// Absolute expiry; the idle timeout may end the session earlier.
    #[schema(value_type = i64)]
    expires_at: UnixTime,
    #[schema(required = true)]
    user_agent: Option<String>,
    #[schema(required = true)]
    ip: Option<String>,
    /// Whether the request was made with this session.
    current: bool,
    /// For an app authorization, the app it was granted to.
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<AppRef>,
}

/// The app an authorization was granted to.
#[derive(Serialize, ToSchema)]
pub(super) struct AppRef {
    client_id: String,
    /// Its name, unless it was deleted since.
    name: Option<String>,
}

impl SessionView {
    pub(super) fn new(
        s: &Session,
        current_sid: Option<&str>,
        apps: &HashMap<String, String>,
    ) -> Self {
        Self {
            id: s.id.clone(),
            user_id: s.user_id.clone(),
            kind: match s.kind {
                SessionKind::Browser => Kind::Browser,
                SessionKind::App => Kind::App,
            },
            created_at: s.created_at,
            last_seen: s.last_seen,
            expires_at: s.expires_at,
            user_agent: s.user_agent.clone(),
            ip: s.ip.clone(),
            current: current_sid == Some(s.id.as_str()),
            app: s.client_id.as_ref().map(|id| AppRef {
                client_id: id.clone(),
                name: apps.get(id).cloned(),
            }),
        }
    }
}

/// The new session, its user and its CSRF token.
#[derive(Serialize, ToSchema)]
pub(super) struct LoginSession {
    #[serde(flatten)]
    session: SessionView,
    username: String,
    /// Send back as `X-CSRF-Token` on cookie-authenticated writes.
    csrf_token: String,
}

/// The current session and its user.
#[derive(Serialize, ToSchema)]
pub(super) struct CurrentSession {
    #[serde(flatten)]
    session: SessionView,
    username: String,
    /// Present when the request used the cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
}

/// The caller's active sessions.
#[derive(Serialize, ToSchema)]
pub(super) struct SessionList {
    pub(super) sessions: Vec<SessionView>,
}

/// How many sessions were revoked.
#[derive(Serialize, ToSchema)]
pub(super) struct Revoked {
    revoked: usize,
}

/// The session cookie's `Set-Cookie` value (`max_age` 0 clears it).
pub(crate) fn cookie_header(value: &str, max_age: i64) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    ))
    .map_err(|_| ApiError::Internal("cookie value".into()))
}

/// Log in with a cookie.
///
/// Starts a browser session and sets the `__Host-tessera_session` cookie (`Secure; HttpOnly;
/// SameSite=Lax; Path=/`). A cookie the browser already holds is never adopted: every login
/// gets a fresh token (no session fixation). The body describes the session, never its token,
/// and carries the `csrf_token` every cookie-authenticated write must send back in
/// `X-CSRF-Token`. Refused with 403 when `Sec-Fetch-Site` is `cross-site` or `Origin` names a
/// foreign origin.
#[utoipa::path(
    post,
    path = "/v1/sessions",
    tag = "account",
    operation_id = "login",
    params(SameOrigin),
    request_body(content(
        (Credentials = "application/json"),
        (Credentials = "application/x-www-form-urlencoded")
    )),
    responses(
        (status = 201, description = "Logged in; the session cookie is set.", body = LoginSession,
            headers(("Set-Cookie" = String, description = "`__Host-tessera_session=<tss_ token>; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=<seconds>`"))),
        (status = 400, response = BadRequest),
        (status = 401, response = InvalidCredentials),
        (status = 403, response = CsrfRejected),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn login(
    State(state): State<AppState>,
    _: SameOrigin,
    client: ClientContext,
    Input(body): Input<Credentials>,
) -> Result<Response, ApiError> {
    let (user, browser) = service::sign_in(&state, &body.username, body.password, &client).await?;
    let session = &browser.session;
    let body = LoginSession {
        session: SessionView::new(session, Some(&session.id), &HashMap::new()),
        username: user.username,
        csrf_token: csrf_token(&browser.token),
    };
    let max_age = session.expires_at.since(session.created_at);
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        cookie_header(browser.token.expose_secret(), max_age)?,
    );
    super::set_device_cookie(&mut resp, browser.device_cookie);
    Ok(resp)
}

/// The current session.
///
/// The session of the cookie or bearer session token. With the cookie, the body also carries
/// the session's `csrf_token`. An access JWT is not a session: 401.
#[utoipa::path(
    get,
    path = "/v1/session",
    tag = "account",
    operation_id = "currentSession",
    security(("sessionCookie" = []), ("bearerSession" = [])),
    responses(
        (status = 200, description = "The session.", body = CurrentSession),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn current_session(
    State(state): State<AppState>,
    Authenticated(cred): Authenticated,
) -> Result<Response, ApiError> {
    let (session, csrf) = match &cred {
        Credential::Cookie { session, token } => (session, Some(csrf_token(token))),
        Credential::BearerSession { session } => (session, None),
        Credential::Jwt(_) => return Err(ApiError::InvalidToken),
    };
    let user = service::user(&state, &session.user_id).await?;
    Ok(Json(CurrentSession {
        session: SessionView::new(session, Some(&session.id), &HashMap::new()),
        username: user.username,
        csrf_token: csrf,
    })
    .into_response())
}

/// Log out this session.
///
/// Revokes the session the request was made with and everything derived from it, and clears
/// the cookie. An access JWT carrying a `sid` logs out its session.
#[utoipa::path(
    delete,
    path = "/v1/session",
    tag = "account",
    operation_id = "logout",
    params(SameOrigin),
    security(("sessionCookie" = [], "csrfToken" = []), ("bearerSession" = []), ("bearerJwt" = [])),
    responses(
        (status = 204, description = "Logged out.",
            headers(("Set-Cookie" = String, description = "Clears the session cookie (`Max-Age=0`)."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = CsrfRejected),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn logout(
    State(state): State<AppState>,
    Authenticated(cred): Authenticated,
    client: ClientContext,
) -> Result<Response, ApiError> {
    service::logout(&state, &cred, &client).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie_header("", 0)?);
    Ok(resp)
}

/// The caller's active sessions.
///
/// Both browser and app sessions that are neither expired, idle nor revoked. `current` marks
/// the session the request was made with.
#[utoipa::path(
    get,
    path = "/v1/sessions",
    tag = "account",
    operation_id = "listSessions",
    security(("sessionCookie" = []), ("bearerSession" = []), ("bearerJwt" = [])),
    responses(
        (status = 200, description = "The sessions.", body = SessionList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(cred): Authenticated,
) -> Result<Response, ApiError> {
    let sessions = service::active_sessions(&state, cred.user_id()).await?;
    let apps = service::app_names(&state, &sessions).await?;
    let sessions = sessions
        .iter()
        .map(|s| SessionView::new(s, cred.sid(), &apps))
        .collect();
    Ok(Json(SessionList { sessions }).into_response())
}

/// Revoke one of the caller's sessions.
///
/// Revokes the session and everything derived from it. Another user's session and one that
/// does not exist get the same 404.
#[utoipa::path(
    delete,
    path = "/v1/sessions/{id}",
    tag = "account",
    operation_id = "revokeSession",
    params(
        ("id" = String, Path, description = "The session id, as listed by `GET /v1/sessions`."),
        SameOrigin,
    ),
    security(("sessionCookie" = [], "csrfToken" = []), ("bearerSession" = []), ("bearerJwt" = [])),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = CsrfRejected),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn revoke_session(
    State(state): State<AppState>,
    Authenticated(cred): Authenticated,
    client: ClientContext,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::NotFound)?;
    service::revoke_own_session(&state, cred.user_id(), &id, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Sign out every other session.
///
/// Revokes every session of the caller except the one the request was made with, with
/// everything derived from them (refresh families, access tokens). Needs a credential bound
/// to a session.
#[utoipa::path(
    delete,
    path = "/v1/sessions",
    tag = "account",
    operation_id = "revokeOtherSessions",
    params(SameOrigin),
    security(("sessionCookie" = [], "csrfToken" = []), ("bearerSession" = []), ("bearerJwt" = [])),
    responses(
        (status = 200, description = "How many sessions were revoked.", body = Revoked),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = CsrfRejected),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn revoke_other_sessions(
    State(state): State<AppState>,
    Authenticated(cred): Authenticated,
    client: ClientContext,
) -> Result<Response, ApiError> {
    let revoked = service::sign_out_others(&state, &cred, &client).await?;
    Ok(Json(Revoked { revoked }).into_response())
}

/// The current password and the new one.
#[derive(Deserialize, ToSchema)]
pub(super) struct PasswordChange {
    #[schema(format = Password)]
    current_password: String,
    #[schema(format = Password)]
    new_password: String,
}

/// Change the password.
///
/// Checks the current password (throttled like a login), applies the password policy to the
/// new one, then revokes every session, refresh family and access token of the user. With a
/// cookie, the cookie is cleared.
#[utoipa::path(
    post,
    path = "/v1/password",
    tag = "account",
    operation_id = "changePassword",
    params(SameOrigin),
    security(("sessionCookie" = [], "csrfToken" = []), ("bearerSession" = []), ("bearerJwt" = [])),
    request_body(content(
        (PasswordChange = "application/json"),
        (PasswordChange = "application/x-www-form-urlencoded")
    )),
    responses(
        (status = 204, description = "Changed; every credential of the user is revoked.",
            headers(("Set-Cookie" = String, description = "Clears the session cookie (`Max-Age=0`) when the request used it."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = CsrfRejected),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn change_password(
    State(state): State<AppState>,
    Authenticated(cred): Authenticated,
    client: ClientContext,
    Input(body): Input<PasswordChange>,
) -> Result<Response, ApiError> {
    service::change_password(
        &state,
        &cred,
        body.current_password,
        body.new_password,
        &client,
    )
    .await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if matches!(cred, Credential::Cookie { .. }) {
        resp.headers_mut()
            .insert(header::SET_COOKIE, cookie_header("", 0)?);
    }
    Ok(resp)
}
