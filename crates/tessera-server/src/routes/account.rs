//! Users, cookie sessions, the session list, password change, and `/v1/userinfo`.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::session::Session;

use crate::auth::{Credential, authenticate, check_origin, csrf_token, require_csrf};
use crate::error::ApiError;
use crate::extract::{ClientIp, Input, SESSION_COOKIE, device_cookie, user_agent};
use crate::service;
use crate::state::AppState;
use tessera_core::device::{DEVICE_COOKIE, DEVICE_COOKIE_SECS};

/// `{"username","password"}`.
#[derive(Deserialize)]
pub(super) struct Credentials {
    username: String,
    password: String,
}

/// `POST /v1/users`.
pub(super) async fn register(
    State(state): State<AppState>,
    Input(body): Input<Credentials>,
) -> Result<Response, ApiError> {
    let user = service::register(&state, &body.username, body.password, false).await?;
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
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Input(body): Input<Credentials>,
) -> Result<Response, ApiError> {
    check_origin(&state, &headers)?;
    let user = service::login(
        &state,
        &body.username,
        body.password,
        ip,
        device_cookie(&headers),
    )
    .await?;
    let (session, token) =
        service::start_browser_session(&state, &user, user_agent(&headers), ip).await?;
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
    if let Some(device) = tessera_core::device::issue(&state.key_ring(), &user.username) {
        let value = format!(
            "{DEVICE_COOKIE}={device}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={DEVICE_COOKIE_SECS}"
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

/// `GET /v1/session`: the current cookie (or bearer session token) session.
pub(super) async fn current_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cred = authenticate(&state, &headers).await?;
    let (session, csrf) = match &cred {
        Credential::Cookie { session, token } => (session, Some(csrf_token(token))),
        Credential::BearerSession { session } => (session, None),
        Credential::Jwt(_) => return Err(ApiError::InvalidToken),
    };
    let mut body = session_json(session, Some(&session.id));
    if let Some(csrf) = csrf {
        set(&mut body, "csrf_token", json!(csrf));
    }
    if let Some(user) = state.store.user_by_id(&session.user_id).await? {
        set(&mut body, "username", json!(user.username));
    }
    Ok(Json(body).into_response())
}

/// `DELETE /v1/session`: log out this session (and everything derived from it).
pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cred = authenticate(&state, &headers).await?;
    require_csrf(&state, &headers, &cred)?;
    let sid = cred.sid().ok_or(ApiError::InvalidToken)?.to_owned();
    service::revoke_session_tree(&state, &sid).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie_header("", 0)?);
    Ok(resp)
}

/// `GET /v1/sessions`: the caller's active sessions.
pub(super) async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cred = authenticate(&state, &headers).await?;
    let now = state.now();
    let mut sessions: Vec<Value> = Vec::new();
    for s in state.store.sessions_of_user(cred.user_id()).await? {
        if s.check(now, &state.config.sessions).is_ok()
            && !state.is_session_revoked(&s.id, &s.user_id).await?
        {
            sessions.push(session_json(&s, cred.sid()));
        }
    }
    Ok(Json(json!({ "sessions": sessions })).into_response())
}

/// `DELETE /v1/sessions/{id}`: revoke one of the caller's sessions.
pub(super) async fn revoke_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let cred = authenticate(&state, &headers).await?;
    require_csrf(&state, &headers, &cred)?;
    let Path(id) = id.map_err(|_| ApiError::NotFound)?;
    // Another user's session id and a non-existent one get the same answer.
    match state.store.session_by_id(&id).await? {
        Some(s) if s.user_id == cred.user_id() => {
            service::revoke_session_tree(&state, &s.id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(ApiError::NotFound),
    }
}

/// `DELETE /v1/sessions`: sign out every other session of the caller.
pub(super) async fn revoke_other_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cred = authenticate(&state, &headers).await?;
    require_csrf(&state, &headers, &cred)?;
    let keep = cred.sid().ok_or(ApiError::InvalidToken)?.to_owned();
    let revoked = service::revoke_user(&state, cred.user_id(), Some(&keep)).await?;
    Ok(Json(json!({ "revoked": revoked })).into_response())
}

/// `GET /v1/userinfo`: a protected resource taking either kind of credential.
pub(super) async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cred = authenticate(&state, &headers).await?;
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
            let user = state
                .store
                .user_by_id(&session.user_id)
                .await?
                .ok_or(ApiError::InvalidToken)?;
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
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Input(body): Input<PasswordChange>,
) -> Result<Response, ApiError> {
    let cred = authenticate(&state, &headers).await?;
    require_csrf(&state, &headers, &cred)?;
    let user = state
        .store
        .user_by_id(cred.user_id())
        .await?
        .ok_or(ApiError::InvalidToken)?;
    // Same throttling as a login: a stolen session must not become a password oracle.
    service::login(
        &state,
        &user.username,
        body.current_password,
        ip,
        device_cookie(&headers),
    )
    .await
    .map_err(|e| match e {
        ApiError::InvalidCredentials => {
            ApiError::InvalidRequest("current_password is wrong".into())
        }
        other => other,
    })?;
    tessera_core::password::check_policy(&user.username, &body.new_password)
        .map_err(|e| ApiError::WeakPassword(e.to_string()))?;
    let hash = state.hash_password(body.new_password).await?;
    state.store.set_password_hash(&user.id, &hash).await?;
    service::revoke_user(&state, &user.id, None).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if matches!(cred, Credential::Cookie { .. }) {
        resp.headers_mut()
            .insert(header::SET_COOKIE, cookie_header("", 0)?);
    }
    Ok(resp)
}
