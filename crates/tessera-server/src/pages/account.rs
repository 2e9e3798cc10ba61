//! The account pages: who you are and the password change (`service::change_password`, as
//! `POST /v1/password`), and the session list with its sign-out buttons (`service::
//! active_sessions`, `revoke_own_session`, `revoke_user`, as `/v1/sessions`).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use tessera_core::session::SessionKind;
use tessera_store::User;

use super::device::Device;
use super::extract::{PageSession, SessionForm};
use super::sign_in::NoFields;
use super::views::{self, SessionRow, Viewer};
use super::{PageError, form_failure, html, see_other};
use crate::auth::Credential;
use crate::error::ApiError;
use crate::routes::session_cookie_header;
use crate::service::{self, ClientContext};
use crate::state::AppState;

fn viewer<'a>(user: &'a User, csrf_token: &'a str) -> Viewer<'a> {
    Viewer {
        username: &user.username,
        is_admin: user.is_admin,
        csrf_token,
    }
}

/// `GET /account`.
pub(super) async fn account_page(
    State(state): State<AppState>,
    signed_in: PageSession,
) -> Result<Response, PageError> {
    let user = service::user(&state, &signed_in.session.user_id).await?;
    let csrf = signed_in.csrf_token();
    let page = views::account(&viewer(&user, &csrf), &user.id, user.created_at, None);
    Ok(html(StatusCode::OK, page))
}

/// The password change form.
#[derive(Deserialize)]
pub(super) struct PasswordFields {
    current_password: String,
    new_password: String,
}

/// `POST /account/password`: on success every session of the user ends, this one included,
/// so the browser is sent to sign in again with the new password.
pub(super) async fn change_password(
    State(state): State<AppState>,
    client: ClientContext,
    SessionForm { signed_in, fields }: SessionForm<PasswordFields>,
) -> Result<Response, PageError> {
    let csrf = signed_in.csrf_token();
    let PageSession { session, token } = signed_in;
    let user_id = session.user_id.clone();
    let credential = Credential::Cookie { session, token };
    let changed = service::change_password(
        &state,
        &credential,
        fields.current_password,
        fields.new_password,
        &client,
    )
    .await;
    match changed {
        Ok(()) => {
            let mut resp = see_other("/login?notice=password-changed");
            resp.headers_mut()
                .insert(header::SET_COOKIE, session_cookie_header("", 0)?);
            Ok(resp)
        }
        Err(e) => {
            let user = service::user(&state, &user_id).await?;
            Ok(form_failure(e, |message| {
                views::account(
                    &viewer(&user, &csrf),
                    &user.id,
                    user.created_at,
                    Some(message),
                )
            }))
        }
    }
}

/// `GET /account/sessions`.
pub(super) async fn sessions_page(
    State(state): State<AppState>,
    signed_in: PageSession,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let user = service::user(&state, &signed_in.session.user_id).await?;
    let sessions = service::active_sessions(&state, &user.id).await?;
    let rows: Vec<SessionRow<'_>> = sessions
        .iter()
        .map(|s| SessionRow {
            id: &s.id,
            app: s.kind == SessionKind::App,
            device: Device::parse(s.user_agent.as_deref()),
            ip: s.ip.as_deref(),
            created: s.created_at,
            last_seen: s.last_seen,
            current: s.id == signed_in.session.id,
        })
        .collect();
    let notice = match query.as_deref() {
        Some("notice=signed-out-one") => Some("That session is signed out."),
        Some("notice=signed-out-others") => Some("Every other session is signed out."),
        _ => None,
    };
    let csrf = signed_in.csrf_token();
    let page = views::sessions(&viewer(&user, &csrf), &rows, notice);
    Ok(html(StatusCode::OK, page))
}

/// `POST /account/sessions/{id}/sign-out`: one of the user's own sessions (another user's,
/// or none, is the same 404 page).
pub(super) async fn sign_out_one(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    SessionForm { signed_in, .. }: SessionForm<NoFields>,
) -> Result<Response, PageError> {
    let Path(id) = id.map_err(|_| ApiError::NotFound)?;
    service::revoke_own_session(&state, &signed_in.session.user_id, &id).await?;
    Ok(see_other("/account/sessions?notice=signed-out-one"))
}

/// `POST /account/sessions/others`: every session but this one.
pub(super) async fn sign_out_others(
    State(state): State<AppState>,
    SessionForm { signed_in, .. }: SessionForm<NoFields>,
) -> Result<Response, PageError> {
    let session = &signed_in.session;
    service::revoke_user(&state, &session.user_id, Some(&session.id)).await?;
    Ok(see_other("/account/sessions?notice=signed-out-others"))
}
