//! The admin API's signing keys and audit log: rotate the keys one step, read the security
//! events. Every handler takes [`Admin`] and makes one call into [`crate::service`].

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tessera_core::audit::EventKind;
use tessera_core::keys::lifecycle::{MIN_PUBLISHED_SECS, Rotation};
use tessera_core::time::UnixTime;
use tessera_core::username::Username;
use tessera_store::{AuditQuery, AuditRecord};

use crate::auth::{Admin, SameOrigin};
use crate::error::ApiError;
use crate::extract::Params;
use crate::routes::openapi::{BadRequest, Forbidden, Unauthorized, Unavailable};
use crate::service::{self, Actor, ClientContext};
use crate::state::AppState;

/// The default page of the audit log.
const DEFAULT_AUDIT_PAGE: u32 = 100;

/// `POST /v1/admin/keys/rotate` parameters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateParams {
    /// Promote the `next` key even if it was published less than 5 minutes ago (verifiers
    /// that cached the JWKS before it was published will refuse its tokens until they refetch),
    /// and even if a `retiring` key still verifies live tokens: that key is retired early, so
    /// the JWKS keeps three keys, and its tokens stop verifying.
    #[serde(default)]
    force: bool,
}

/// What one rotation step did: either `published_next` (phase one) or `current`,
/// `retiring` and `published_next` (phase two).
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Rotated {
    /// The key that signs now (phase two only).
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<String>,
    /// The key that signed before and still verifies (phase two only).
    #[serde(skip_serializing_if = "Option::is_none")]
    retiring: Option<String>,
    /// The new `next` key, published in the JWKS.
    published_next: String,
    /// Seconds before the `next` key may be promoted (phase one only).
    #[serde(skip_serializing_if = "Option::is_none")]
    promote_after_secs: Option<i64>,
    /// Keys that were `retiring` and are retired by this step, to keep the JWKS at three keys
    /// (phase two only; absent when none): their tokens had expired, or with `force=true`
    /// they stop verifying now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    retired: Vec<String>,
}

/// Rotate the signing keys one step.
///
/// The first call publishes a `next` key; a call once it has been published for 5 minutes
/// (or with `force=true`) makes it the signing key — the old one keeps verifying as
/// `retiring` — and publishes a new `next`. The JWKS holds at most three keys, so that call is
/// refused (400, saying when) while an older `retiring` key still verifies live tokens, unless
/// `force=true` retires it early. The same step as `tessera keys rotate`.
#[utoipa::path(
    post,
    path = "/v1/admin/keys/rotate",
    tag = "admin",
    operation_id = "adminRotateKeys",
    params(RotateParams, SameOrigin),
    security(("bearerJwt" = []), ("bearerSession" = []), ("sessionCookie" = [], "csrfToken" = [])),
    responses(
        (status = 200, description = "Rotated one step.", body = Rotated),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn rotate_keys(
    State(state): State<AppState>,
    Admin(admin): Admin,
    client: ClientContext,
    Params(params): Params<RotateParams>,
) -> Result<Json<Rotated>, ApiError> {
    let actor = Actor::admin(&admin, &client);
    let outcome = service::rotate_keys(&state, &actor, params.force).await?;
    Ok(Json(match outcome {
        Rotation::Published { next } => Rotated {
            current: None,
            retiring: None,
            published_next: next,
            promote_after_secs: Some(MIN_PUBLISHED_SECS),
            retired: Vec::new(),
        },
        Rotation::Promoted {
            current,
            retiring,
            next,
            retired,
        } => Rotated {
            current: Some(current),
            retiring,
            published_next: next,
            promote_after_secs: None,
            retired,
        },
    }))
}

/// `GET /v1/admin/audit` parameters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditParams {
    /// Only this username's events.
    #[param(max_length = 64)]
    user: Option<String>,
    /// Only events of this kind: `login`, `login_failed`, `logout`, `session_revoked`,
    /// `refresh_reuse`, `password_changed`, `user_disabled`, `key_rotated`, `key_revoked`,
    /// `client_created`, `client_deleted` or `admin`.
    kind: Option<String>,
    /// Only events at or after this time (seconds since the Unix epoch).
    since: Option<i64>,
    /// Paging: only events older than this cursor (the previous page's `next`).
    before: Option<i64>,
    /// How many events at most (default 100, capped at 500).
    #[param(minimum = 0, maximum = 500)]
    limit: Option<u32>,
}

/// A security event.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct EventView {
    /// Seconds since the Unix epoch.
    #[schema(value_type = i64)]
    at: UnixTime,
    /// One of the kinds listed for the `kind` parameter.
    #[schema(value_type = String)]
    kind: &'static str,
    /// The username concerned.
    #[schema(required = true)]
    user: Option<String>,
    /// The client address of the request.
    #[schema(required = true)]
    ip: Option<String>,
    /// What happened: a failure's reason, what an admin did, which key.
    detail: String,
}

/// A page of events, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct EventPage {
    events: Vec<EventView>,
    /// The `before` value for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<i64>,
}

impl AuditParams {
    /// The store's query. `user` goes through [`Username::parse`], the rule every name was
    /// stored under, so the filter matches what login and the CLI would, and a name that
    /// could never have been registered is a 400 rather than an empty page.
    fn into_query(self) -> Result<AuditQuery, ApiError> {
        let kind = match self.kind.as_deref() {
            None | Some("") => None,
            Some(k) => Some(EventKind::parse(k).ok_or_else(|| {
                ApiError::InvalidRequest(
                    format!("kind must be one of {}", EventKind::names().join(", ")).into(),
                )
            })?),
        };
        let user = match self.user.as_deref() {
            None | Some("") => None,
            Some(u) => Some(
                Username::parse(u)
                    .map_err(|e| ApiError::InvalidRequest(format!("user: {e}").into()))?,
            ),
        };
        Ok(AuditQuery {
            user: user.map(Username::into_string),
            kind,
            since: self.since.map(UnixTime),
            before: self.before,
            limit: self.limit.unwrap_or(DEFAULT_AUDIT_PAGE),
        })
    }
}

fn view(record: AuditRecord) -> EventView {
    let e = record.event;
    EventView {
        at: e.at,
        kind: e.kind.as_str(),
        user: e.user,
        ip: e.ip,
        detail: e.detail,
    }
}

/// The audit log.
///
/// Security events, newest first: logins and their failures (with the reason), logouts,
/// session revocations, refresh-token reuse, password changes, disabled users, key rotations
/// and revocations, client changes, and every admin action. Filters combine; page with
/// `before` set to the previous page's `next`.
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    tag = "admin",
    operation_id = "adminAudit",
    params(AuditParams),
    security(("bearerJwt" = []), ("bearerSession" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, description = "The events, newest first.", body = EventPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn audit(
    State(state): State<AppState>,
    _admin: Admin,
    Params(params): Params<AuditParams>,
) -> Result<Json<EventPage>, ApiError> {
    let query = params.into_query()?;
    let page = service::audit_events(&state, &query).await?;
    let full = u32::try_from(page.len()).is_ok_and(|n| n > 0 && n == query.page_size());
    let next = if full {
        page.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(Json(EventPage {
        events: page.into_iter().map(view).collect(),
        next,
    }))
}
