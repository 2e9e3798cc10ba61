//! The admin API (`/v1/admin/…`): for users marked admin, through the [`Admin`] extractor.
//! Here the client registry; users and sessions are `admin_users`, keys and the audit log
//! `admin_audit`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_core::client::{ClientId, NewClient, Scope};

use crate::auth::{Admin, SameOrigin};
use crate::error::ApiError;
use crate::extract::Input;
use crate::routes::openapi::shapes::ClientListing;
use crate::routes::openapi::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable,
    UnsupportedMediaType,
};
use crate::service::{self, Actor, ClientContext};
use crate::state::AppState;

/// A client to register: all but `name` optional.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewClient)]
pub(super) struct NewClientRequest {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Space-separated scope tokens the client may be granted.
    #[serde(default)]
    scope: String,
    /// Exact redirect URIs: https, or http on a loopback host; no fragment.
    #[serde(default)]
    #[schema(format = "uri")]
    redirect_uris: Vec<String>,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    first_party: bool,
    #[serde(default)]
    dpop: bool,
}

/// The registered clients, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ClientList {
    #[schema(value_type = Vec<ClientListing>)]
    clients: Vec<Value>,
}

/// A new client's id, and its secret (confidential clients only), shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ClientCreated {
    client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

/// Every registered client (never a secret or its hash).
#[utoipa::path(
    get,
    path = "/v1/admin/clients",
    tag = "admin",
    operation_id = "adminListClients",
    security(("bearerJwt" = []), ("bearerSession" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, description = "The clients, oldest first.", body = ClientList),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn list_clients(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<ClientList>, ApiError> {
    let clients = service::clients(&state).await?;
    Ok(Json(ClientList {
        clients: clients.iter().map(|c| c.listing()).collect(),
    }))
}

/// Register a client; its secret is shown this once.
///
/// `client_secret` is returned only for a confidential client.
#[utoipa::path(
    post,
    path = "/v1/admin/clients",
    tag = "admin",
    operation_id = "adminCreateClient",
    params(SameOrigin),
    security(("bearerJwt" = []), ("bearerSession" = []), ("sessionCookie" = [], "csrfToken" = [])),
    request_body(content(
        (NewClientRequest = "application/json"),
        (NewClientRequest = "application/x-www-form-urlencoded")
    )),
    responses(
        (status = 201, description = "Registered.", body = ClientCreated),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn create_client(
    State(state): State<AppState>,
    Admin(admin): Admin,
    client: ClientContext,
    Input(req): Input<NewClientRequest>,
) -> Result<Response, ApiError> {
    let scope =
        Scope::parse(&req.scope).map_err(|_| ApiError::InvalidRequest("malformed scope".into()))?;
    let new = NewClient {
        name: req.name,
        scope,
        redirect_uris: req.redirect_uris,
        public: req.public,
        first_party: req.first_party,
        dpop: req.dpop,
    };
    let actor = Actor::admin(&admin, &client);
    let (record, secret) = service::register_client(&state, new, &actor).await?;
    let body = ClientCreated {
        client_id: record.id.as_str().to_owned(),
        client_secret: secret.map(|s| s.expose_secret().to_owned()),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Delete a client.
///
/// Its tokens die with it (a revocation every instance and resource server hears of), then
/// the registration goes.
#[utoipa::path(
    delete,
    path = "/v1/admin/clients/{id}",
    tag = "admin",
    operation_id = "adminDeleteClient",
    params(("id" = String, Path, description = "The client id."), SameOrigin),
    security(("bearerJwt" = []), ("bearerSession" = []), ("sessionCookie" = [], "csrfToken" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn delete_client(
    State(state): State<AppState>,
    Admin(admin): Admin,
    client: ClientContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = ClientId::parse(&id).map_err(|_| ApiError::NotFound)?;
    if service::delete_client(&state, &id, &Actor::admin(&admin, &client)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
