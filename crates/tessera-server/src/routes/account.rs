//! Users, cookie sessions, the session list, password change, and `/v1/userinfo`.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::session::Session;

use crate::auth::{Authenticated, Credential, SameOrigin, csrf_token};
use crate::error::ApiError;
use crate::extract::{Input, SESSION_COOKIE};
use crate::service::{self, ClientContext};
use crate::state::AppState;

/// `{"username","password"}`.
#[derive(Deserialize)]
pub(super) struct Credentials {
    username: String,
    password: String,
}

/// `POST /v1/users`.
pub(super) async fn register(
    State(state): State<AppState>,
    client: ClientContext,
    Input(body): Input<Credentials>,
) -> Result<Response, ApiError> {
    let user = service::register(&state, &body.username, body.password, false, &client).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": user.id, "username": user.username })),
    )
        .into_response())
}

fn session_json(s: &Session, current_sid: Option<&str>) -> Value {
    json!({
        "id": s.id,
        "user_id": s.user_id,
        "kind": s.kind.as_str(),
        "created_at": s.created_at,
        "last_seen": s.last_seen,
        "expires_at": s.expires_at,
        "user_agent": s.user_agent,
        "ip": s.ip,
        "current": current_sid == Some(s.id.as_str()),
    })
}

fn set(body: &mut Value, key: &str, value: Value) {
    if let Some(obj) = body.as_object_mut() {
        obj.insert(key.to_owned(), value);
    }
}

fn cookie_header(value: &str, max_age: i64) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    ))
    .map_err(|_| ApiError::Internal("cookie value".into()))
}

/// `POST /v1/sessions`: log in with a cookie. A cookie the browser already had is ignored,
/// never adopted: every login gets a fresh token (no session fixation).
pub(super) async fn login(
    State(state): State<AppState>,
    _: SameOrigin,
    client: ClientContext,
    Input(body): Input<Credentials>,
) -> Result<Response, ApiError> {
    let user = service::login(&state, &body.username, body.password, &client).await?;
    let (session, token) = service::start_browser_session(&state, &user, &client).await?;
    let mut body = session_json(&session, Some(&session.id));
    set(&mut body, "username", json!(user.username));
    set(&mut body, "csrf_token", json!(csrf_token(&token)));
    let max_age = session.expires_at.since(session.created_at);
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        cookie_header(token.expose_secret(), max_age)?,
    );
    // A fresh device cookie: from now on this browser is throttled on its own.
    super::set_device_cookie(&mut resp, service::device_cookie(&state, &user));
    Ok(resp)
}

/// `GET /v1/session`: the current cookie (or bearer session token) session.
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
    let mut body = session_json(session, Some(&session.id));
    if let Some(csrf) = csrf {
        set(&mut body, "csrf_token", json!(csrf));
    }
    set(&mut body, "username", json!(user.username));
    Ok(Json(body).into_response())
}

/// `DELETE /v1/session`: log out this session (and everything derived from it).
pub(super) async fn logout(
    State(state): State<AppState>,
    Authenticated(cred): Authenticated,
) -> Result<Response, ApiError> {
    service::logout(&state, &cred).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie_header("", 0)?);
    Ok(resp)
}

/// `GET /v1/sessions`: the caller's active sessions.
pub(super) async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(cred): Authenticated,
) -> Result<Response, ApiError> {
    let sessions: Vec<Value> = service::active_sessions(&state, cred.user_id())
        .await?
        .iter()
        .map(|s| session_json(s, cred.sid()))
        .collect();
    Ok(Json(json!({ "sessions": sessions })).into_response())
}

/// `DELETE /v1/sessions/{id}`: revoke one of the caller's sessions.
pub(super) async fn revoke_session(
    State(state): State<AppState>,
    Authenticated(cred): Authenticated,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::NotFound)?;
    service::revoke_own_session(&state, cred.user_id(), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v1/sessions`: sign out every other session of the caller.
pub(super) async fn revoke_other_sessions(
    State(state): State<AppState>,
    Authenticated(cred): Authenticated,
) -> Result<Response, ApiError> {
    let keep = cred.sid().ok_or(ApiError::InvalidToken)?;
    let revoked = service::revoke_user(&state, cred.user_id(), Some(keep)).await?;
    Ok(Json(json!({ "revoked": revoked })).into_response())
}

/// `GET /v1/userinfo`: a protected resource taking either kind of credential.
pub(super) async fn userinfo(
    State(state): State<AppState>,
    Authenticated(cred): Authenticated,
) -> Result<Response, ApiError> {
    let mut body = json!({ "sub": cred.user_id(), "auth": cred.kind(), "sid": cred.sid() });
    match &cred {
        Credential::Jwt(claims) => {
            // Everything comes from the verified token: no store lookup on the JWT path.
            set(&mut body, "username", json!(claims.username));
            set(&mut body, "client_id", json!(claims.client_id));
            set(&mut body, "scope", json!(claims.scope));
            set(&mut body, "exp", json!(claims.exp));
        }
        Credential::Cookie { session, .. } | Credential::BearerSession { session } => {
            let user = service::user(&state, &session.user_id).await?;
            set(&mut body, "username", json!(user.username));
            set(&mut body, "is_admin", json!(user.is_admin));
        }
    }
    Ok(Json(body).into_response())
}

/// `{"current_password","new_password"}`.
#[derive(Deserialize)]
pub(super) struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /v1/password`: change the password and revoke every credential of the user.
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
