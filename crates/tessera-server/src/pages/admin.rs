//! The admin pages: the admin API's flows (`service::find_users`, `disable_user`,
//! `user_sessions`, `end_session`, `audit_events`, `signing_keys`) behind forms, for
//! administrators only ([`PageAdmin`], [`AdminForm`]).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tessera_store::AuditQuery;

use super::admin_views::{self, AdminPage};
use super::extract::{AdminForm, PageAdmin, PageSession, SessionForm};
use super::return_to::ReturnTo;
use super::sign_in::NoFields;
use super::views::Viewer;
use super::{PageError, html, see_other, session_rows};
use crate::auth::Credential;
use crate::error::ApiError;
use crate::service::{self, Actor, ClientContext};
use crate::state::AppState;

/// How many events the admin page shows.
const RECENT_EVENTS: u32 = 25;
/// How many users one search shows.
const FOUND_USERS: u32 = 50;

#[derive(Deserialize, Default)]
struct AdminQuery {
    q: Option<String>,
    notice: Option<String>,
}

/// `GET /admin[?q=…]`.
pub(super) async fn admin_page(
    State(state): State<AppState>,
    PageAdmin(signed_in): PageAdmin,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let q: AdminQuery =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let me = service::user(&state, &signed_in.session.user_id).await?;
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let found = match search {
        Some(fragment) => Some(service::find_users(&state, fragment, FOUND_USERS).await?),
        None => None,
    };
    let keys = service::signing_keys(&state, &state.config.key_schedule()).await?;
    let events = service::audit_events(
        &state,
        &AuditQuery {
            limit: RECENT_EVENTS,
            ..AuditQuery::default()
        },
    )
    .await?;
    let notice = match q.notice.as_deref() {
        Some("disabled") => Some("The user is disabled and every session of theirs has ended."),
        _ => None,
    };
    let csrf = signed_in.csrf_token();
    let viewer = Viewer {
        username: &me.username,
        is_admin: true,
        csrf_token: &csrf,
    };
    let page = AdminPage {
        query: q.q.as_deref().unwrap_or_default(),
        found: found.as_deref(),
        keys: &keys,
        rotation_secs: state.config.key_rotation_secs,
        events: &events,
        notice,
        own_id: &me.id,
    };
    Ok(html(StatusCode::OK, admin_views::admin(&viewer, &page)))
}

fn actor(signed_in: PageSession, client: &ClientContext) -> Actor {
    let PageSession { session, token } = signed_in;
    Actor::admin(&Credential::Cookie { session, token }, client)
}

/// `POST /admin/users/{id}/disable`.
pub(super) async fn disable_user(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    client: ClientContext,
    AdminForm(SessionForm { signed_in, .. }): AdminForm<NoFields>,
) -> Result<Response, PageError> {
    let Path(id) = id.map_err(|_| ApiError::NotFound)?;
    service::disable_user(&state, &actor(signed_in, &client), &id).await?;
    Ok(see_other("/admin?notice=disabled"))
}

/// `GET /admin/users/{id}`: one user's live sessions.
pub(super) async fn user_page(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    PageAdmin(signed_in): PageAdmin,
) -> Result<Response, PageError> {
    let Path(id) = id.map_err(|_| ApiError::NotFound)?;
    let sessions = service::user_sessions(&state, &id).await?;
    let user = service::user(&state, &id).await?;
    let me = service::user(&state, &signed_in.session.user_id).await?;
    let csrf = signed_in.csrf_token();
    let viewer = Viewer {
        username: &me.username,
        is_admin: true,
        csrf_token: &csrf,
    };
    let rows = session_rows(&sessions, &signed_in.session.id);
    let page = admin_views::user_sessions(&viewer, &user, &rows);
    Ok(html(StatusCode::OK, page))
}

/// The end-session form: whose page to go back to.
#[derive(Deserialize)]
pub(super) struct EndFields {
    user: String,
}

/// `POST /admin/sessions/{id}/end`.
pub(super) async fn end_session(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    client: ClientContext,
    AdminForm(SessionForm { signed_in, fields }): AdminForm<EndFields>,
) -> Result<Response, PageError> {
    let Path(id) = id.map_err(|_| ApiError::NotFound)?;
    service::end_session(&state, &actor(signed_in, &client), &id).await?;
    let back = ReturnTo::parse(&format!("/admin/users/{}", fields.user));
    Ok(see_other(back.as_ref().map_or("/admin", ReturnTo::as_str)))
}
