//! The admin API (`/v1/admin/…`): for users marked admin, through the [`Admin`] extractor.
//! Today: the client registry.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::client::{ClientId, NewClient, Scope};

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::Input;
use crate::service;
use crate::state::AppState;

/// `POST /v1/admin/clients`: `{"name","scope","redirect_uris","public","first_party","dpop"}`,
/// all but `name` optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewClientRequest {
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    first_party: bool,
    #[serde(default)]
    dpop: bool,
}

/// `GET /v1/admin/clients`.
pub(super) async fn list_clients(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Value>, ApiError> {
    let clients = service::clients(&state).await?;
    let listed: Vec<Value> = clients.iter().map(|c| c.listing()).collect();
    Ok(Json(json!({ "clients": listed })))
}

/// `POST /v1/admin/clients` → `201 {"client_id","client_secret"}` (no secret for a public
/// client; the secret is shown this once).
pub(super) async fn create_client(
    State(state): State<AppState>,
    _admin: Admin,
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
    let (record, secret) = service::register_client(&state, new).await?;
    let mut body = json!({ "client_id": record.id.as_str() });
    if let (Some(obj), Some(secret)) = (body.as_object_mut(), secret) {
        obj.insert("client_secret".into(), secret.expose_secret().into());
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE /v1/admin/clients/{id}`: its tokens die with it (a revocation every instance and
/// resource server hears of), then the registration goes.
pub(super) async fn delete_client(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = ClientId::parse(&id).map_err(|_| ApiError::NotFound)?;
    if service::delete_client(&state, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
