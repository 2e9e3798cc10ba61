//! The HTTP API as one [`axum::Router`], built by [`app`] so it can be driven in-process by
//! tests (`tower::ServiceExt::oneshot`) exactly as the binary serves it.

mod account;
mod admin;
mod admin_audit;
mod admin_users;
mod meta;
mod oauth;
pub(crate) mod openapi;
mod revocations;
mod userinfo;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::routing::{MethodFilter, on};

use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;

/// The methods routes use; each knows its [`MethodFilter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `DELETE`
    Delete,
}

impl Verb {
    /// The HTTP method.
    #[must_use]
    pub fn method(self) -> Method {
        match self {
            Self::Get => Method::GET,
            Self::Post => Method::POST,
            Self::Delete => Method::DELETE,
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Self::Get => MethodFilter::GET,
            Self::Post => MethodFilter::POST,
            Self::Delete => MethodFilter::DELETE,
        }
    }
}

/// The router being built, and the table of what it routes — kept by the same call, so the
/// table cannot drift from the router. The API and the pages are both built with it.
pub(crate) struct Routes {
    pub(crate) router: Router<AppState>,
    pub(crate) table: Vec<(Verb, &'static str)>,
}

impl Routes {
    pub(crate) fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    pub(crate) fn route<H, T>(mut self, verb: Verb, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, on(verb.filter(), handler));
        self.table.push((verb, path));
        self
    }
}

/// Every route of the API. Cookie-authenticated writes are CSRF-checked by the
/// [`Authenticated`](crate::auth::Authenticated) extractor, not here.
fn api() -> Routes {
    use Verb::{Delete, Get, Post};
    Routes::new()
        .route(Post, "/v1/users", account::register)
        .route(Post, "/v1/sessions", account::login)
        .route(Get, "/v1/sessions", account::list_sessions)
        .route(Delete, "/v1/sessions", account::revoke_other_sessions)
        .route(Delete, "/v1/sessions/{id}", account::revoke_session)
        .route(Get, "/v1/session", account::current_session)
        .route(Delete, "/v1/session", account::logout)
        .route(Get, "/v1/userinfo", userinfo::userinfo)
        .route(Post, "/v1/password", account::change_password)
        .route(Post, "/oauth/token", oauth::token)
        .route(Post, "/oauth/revoke", oauth::revoke)
        .route(Post, "/oauth/introspect", oauth::introspect)
        .route(Get, "/v1/revocations", revocations::list)
        .route(Get, "/v1/revocations/stream", revocations::stream)
        .route(Get, "/v1/admin/clients", admin::list_clients)
        .route(Post, "/v1/admin/clients", admin::create_client)
        .route(Delete, "/v1/admin/clients/{id}", admin::delete_client)
        .route(Get, "/v1/admin/users", admin_users::find_users)
        .route(
            Post,
            "/v1/admin/users/{id}/disable",
            admin_users::disable_user,
        )
        .route(
            Get,
            "/v1/admin/users/{id}/sessions",
            admin_users::user_sessions,
        )
        .route(Delete, "/v1/admin/sessions/{id}", admin_users::end_session)
        .route(Post, "/v1/admin/keys/rotate", admin_audit::rotate_keys)
        .route(Get, "/v1/admin/audit", admin_audit::audit)
        .route(Get, "/.well-known/openid-configuration", meta::discovery)
        .route(Get, "/.well-known/jwks.json", meta::jwks)
        .route(Get, "/healthz", meta::healthz)
        .route(Get, "/readyz", meta::readyz)
        .route(Get, "/metrics", meta::metrics)
        .route(Get, "/openapi.json", meta::openapi)
}

pub(crate) use account::cookie_header as session_cookie_header;

/// Every (method, path) the API routes, for tests that walk the router (the CSRF guard,
/// the OpenAPI description).
#[must_use]
pub fn route_table() -> Vec<(Verb, &'static str)> {
    api().table
}

/// The OpenAPI 3.1 description of [`route_table`], generated from the handlers' annotations.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document()
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    api()
        .router
        .merge(crate::pages::routes().router)
        .fallback(|headers: HeaderMap| async move {
            crate::pages::fallback(&headers, ApiError::NotFound)
        })
        .method_not_allowed_fallback(|headers: HeaderMap| async move {
            crate::pages::fallback(&headers, ApiError::MethodNotAllowed)
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::edge::edge,
        ))
        .with_state(state)
}

/// Appends the device cookie (see [`tessera_core::device`]) to a login's response.
pub(crate) fn set_device_cookie(resp: &mut axum::response::Response, device: Option<String>) {
    use tessera_core::device::{DEVICE_COOKIE, DEVICE_COOKIE_SECS};
    let Some(device) = device else { return };
    let value = format!(
        "{DEVICE_COOKIE}={device}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={DEVICE_COOKIE_SECS}"
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}
