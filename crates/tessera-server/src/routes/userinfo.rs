//! `/v1/userinfo`: the protected resource that takes either kind of credential.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_core::time::UnixTime;
use utoipa::ToSchema;

use crate::auth::{Authenticated, Credential};
use crate::error::ApiError;
use crate::routes::openapi::{BadRequest, Unauthorized, Unavailable};
use crate::service;
use crate::state::AppState;

/// Who the caller is.
#[derive(Serialize, ToSchema)]
pub(super) struct Userinfo {
    /// The user id.
    sub: String,
    /// The kind of credential the request was made with: `jwt` or `session`.
    #[schema(value_type = String)]
    auth: &'static str,
    /// The login session the credential belongs to.
    #[schema(required = true)]
    sid: Option<String>,
    #[schema(required = true)]
    username: Option<String>,
    /// JWT only.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    /// JWT only (`null` when the token has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    scope: Option<Option<String>>,
    /// JWT only: seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    exp: Option<UnixTime>,
    /// Session only.
    #[serde(skip_serializing_if = "Option::is_none")]
    is_admin: Option<bool>,
}

/// Who the caller is.
///
/// A protected resource taking either kind of credential. On the JWT path everything comes
/// from the verified token (no store lookup); on the session path the user is read from the
/// store.
#[utoipa::path(
    get,
    path = "/v1/userinfo",
    tag = "resource",
    operation_id = "userinfo",
    security(("bearerJwt" = []), ("bearerSession" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, description = "The caller.", body = Userinfo),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn userinfo(
    State(state): State<AppState>,
    Authenticated(cred): Authenticated,
) -> Result<Response, ApiError> {
    let mut body = Userinfo {
        sub: cred.user_id().to_owned(),
        auth: cred.kind(),
        sid: cred.sid().map(str::to_owned),
        username: None,
        client_id: None,
        scope: None,
        exp: None,
        is_admin: None,
    };
    match cred {
        Credential::Jwt(claims) => {
            // Everything comes from the verified token: no store lookup on the JWT path.
            body.username = claims.username;
            body.client_id = Some(claims.client_id);
            body.scope = Some(claims.scope);
            body.exp = Some(claims.exp);
        }
        Credential::Cookie { session, .. } | Credential::BearerSession { session } => {
            let user = service::user(&state, &session.user_id).await?;
            body.username = Some(user.username);
            body.is_admin = Some(user.is_admin);
        }
    }
    Ok(Json(body).into_response())
}
