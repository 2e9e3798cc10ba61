//! The admin API's users and sessions: find users, disable one, see and end their sessions.
//! Every handler takes [`Admin`] and makes one call into [`crate::service`].

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tessera_store::User;

use crate::auth::{Admin, SameOrigin};
use crate::error::ApiError;
use crate::extract::Params;
use crate::routes::account::{SessionList, SessionView};
use crate::routes::openapi::{BadRequest, Forbidden, NotFound, Unauthorized, Unavailable};
use crate::service::{self, Actor, ClientContext};
use crate::state::AppState;

/// The longest id a path may carry; anything longer names nothing (404).
const MAX_ID: usize = 128;

/// The default page of a user search.
const DEFAULT_USER_PAGE: u32 = 50;

/// `GET /v1/admin/users` parameters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct UserSearch {
    /// A fragment of the username (case-insensitive, at most 64 characters); empty or
    /// absent: every user.
    #[serde(default)]
    #[param(max_length = 64)]
    query: String,
    /// How many users at most (default 50, capped at 200), ordered by username.
    #[param(minimum = 0, maximum = 200)]
    limit: Option<u32>,
}

/// A user as admins see it (never a password hash).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AdminUser)]
pub(super) struct UserView {
    id: String,
    username: String,
    is_admin: bool,
    disabled: bool,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            is_admin: u.is_admin,
            disabled: u.disabled,
        }
    }
}

/// Users found.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct UserList {
    users: Vec<UserView>,
}

/// A user just disabled, and how many of their sessions ended.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Disabled {
    #[serde(flatten)]
    user: UserView,
    sessions_revoked: usize,
}

fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match id {
        Ok(Path(id)) if !id.is_empty() && id.len() <= MAX_ID => Ok(id),
        _ => Err(ApiError::NotFound),
    }
}

/// Find users by a fragment of their name.
#[utoipa::path(
    get,
    path = "/v1/admin/users",
    tag = "admin",
    operation_id = "adminFindUsers",
    params(UserSearch),
    security(("bearerJwt" = []), ("bearerSession" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, description = "The users, ordered by username.", body = UserList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn find_users(
    State(state): State<AppState>,
    _admin: Admin,
    Params(search): Params<UserSearch>,
) -> Result<Json<UserList>, ApiError> {
    let limit = search.limit.unwrap_or(DEFAULT_USER_PAGE);
    let users = service::find_users(&state, &search.query, limit).await?;
    Ok(Json(UserList {
        users: users.into_iter().map(UserView::from).collect(),
    }))
}

/// Disable a user.
///
/// Ends every credential of the user at once — sessions, refresh tokens, access tokens, on
/// every instance — and refuses their logins from now on (with the answer a wrong password
/// gets). A disabled admin is no longer an admin. An admin cannot disable themselves (400).
#[utoipa::path(
    post,
    path = "/v1/admin/users/{id}/disable",
    tag = "admin",
    operation_id = "adminDisableUser",
    params(("id" = String, Path, description = "The user id."), SameOrigin),
    security(("bearerJwt" = []), ("bearerSession" = []), ("sessionCookie" = [], "csrfToken" = [])),
    responses(
        (status = 200, description = "Disabled.", body = Disabled),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn disable_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    client: ClientContext,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Disabled>, ApiError> {
    let id = path_id(id)?;
    let actor = Actor::admin(&admin, &client);
    let (user, sessions_revoked) = service::disable_user(&state, &actor, &id).await?;
    Ok(Json(Disabled {
        user: user.into(),
        sessions_revoked,
    }))
}

/// A user's live sessions.
///
/// The same shape as `GET /v1/sessions`; `current` marks the session the admin's own request
/// was made with, if it is listed.
#[utoipa::path(
    get,
    path = "/v1/admin/users/{id}/sessions",
    tag = "admin",
    operation_id = "adminUserSessions",
    params(("id" = String, Path, description = "The user id.")),
    security(("bearerJwt" = []), ("bearerSession" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, description = "The sessions, oldest first.", body = SessionList),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn user_sessions(
    State(state): State<AppState>,
    Admin(admin): Admin,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<SessionList>, ApiError> {
    let id = path_id(id)?;
    let sessions = service::user_sessions(&state, &id).await?;
    let apps = service::app_names(&state, &sessions).await?;
    Ok(Json(SessionList {
        sessions: sessions
            .iter()
            .map(|s| SessionView::new(s, admin.sid(), &apps))
            .collect(),
    }))
}

/// End any user's session.
///
/// Revokes the session and everything derived from it (its refresh families and access
/// tokens); the revocation reaches every instance and resource server.
#[utoipa::path(
    delete,
    path = "/v1/admin/sessions/{id}",
    tag = "admin",
    operation_id = "adminEndSession",
    params(("id" = String, Path, description = "The session id."), SameOrigin),
    security(("bearerJwt" = []), ("bearerSession" = []), ("sessionCookie" = [], "csrfToken" = [])),
    responses(
        (status = 204, description = "Ended."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn end_session(
    State(state): State<AppState>,
    Admin(admin): Admin,
    client: ClientContext,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(id)?;
    service::end_session(&state, &Actor::admin(&admin, &client), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
