//! Tessera's pages for people in a browser: sign-in, registration, the account, its sessions,
//! sign-out, and for administrators `/admin` — server-rendered HTML that works without JavaScript.
//!
//! Design decision: the pages are a second face on the *same* flows as the API — a page
//! handler parses a form, calls the `service` function the matching API route calls (same
//! throttling, enumeration defence, password policy, session tree), and renders the result.
//! Forms prove they come from these pages through the [`extract`] extractors, the only way a
//! page handler reads a form. Every page is sent by [`html`] with strict headers (a CSP that
//! allows one stylesheet from this origin and no script at all, `frame-ancestors 'none'`,
//! `Referrer-Policy: same-origin` so browsers send `Origin` on the pages' own posts,
//! `Cache-Control: no-store`); every failure is a page too ([`PageError`]), never a trace.

mod account;
mod admin;
mod admin_views;
pub(crate) mod authorize;
pub mod device;
pub mod extract;
pub mod return_to;
mod sign_in;
pub mod views;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::Markup;
use tessera_core::session::{Session, SessionKind};

use crate::error::ApiError;
use crate::routes::{Routes, Verb};
use return_to::ReturnTo;

/// Where the one stylesheet is served.
pub const STYLESHEET_PATH: &str = "/static/tessera.css";

const STYLESHEET: &str = include_str!("tessera.css");

/// The pages' Content Security Policy: this origin's stylesheet, and nothing else — no script
/// (so no `unsafe-inline` and no nonce to manage), no frames, no foreign form target.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Every page route, for tests that walk them (every `Post` must refuse a form without its
/// CSRF proof): the table `routes()` keeps while it builds the router, so it cannot miss one.
#[must_use]
pub fn route_table() -> Vec<(Verb, &'static str)> {
    routes().table
}

/// The pages' routes, merged into [`crate::app`].
pub(crate) fn routes() -> Routes {
    use Verb::{Get, Post};
    Routes::new()
        .route(Get, "/", || async { see_other("/account") })
        .route(Get, "/login", sign_in::login_page)
        .route(Post, "/login", sign_in::login)
        .route(Get, "/register", sign_in::register_page)
        .route(Post, "/register", sign_in::register)
        .route(Post, "/logout", sign_in::logout)
        .route(Get, "/account", account::account_page)
        .route(Post, "/account/password", account::change_password)
        .route(Get, "/account/sessions", account::sessions_page)
        .route(Post, "/account/sessions/others", account::sign_out_others)
        .route(
            Post,
            "/account/sessions/{id}/sign-out",
            account::sign_out_one,
        )
        .route(Get, "/admin", admin::admin_page)
        .route(Get, "/admin/users/{id}", admin::user_page)
        .route(Post, "/admin/users/{id}/disable", admin::disable_user)
        .route(Post, "/admin/sessions/{id}/end", admin::end_session)
        .route(Get, STYLESHEET_PATH, stylesheet)
        .route(Get, "/oauth/authorize", authorize::authorize)
        .route(Post, "/oauth/authorize", authorize::decide)
}

/// The rows of a sessions table; `current_sid` is marked "this device".
fn session_rows<'a>(sessions: &'a [Session], current_sid: &str) -> Vec<views::SessionRow<'a>> {
    sessions
        .iter()
        .map(|s| views::SessionRow {
            id: &s.id,
            app: s.kind == SessionKind::App,
            device: device::Device::parse(s.user_agent.as_deref()),
            ip: s.ip.as_deref(),
            created: s.created_at,
            last_seen: s.last_seen,
            current: s.id == current_sid,
        })
        .collect()
}

async fn stylesheet() -> Response {
    let mut resp = STYLESHEET.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    resp
}

/// A page: the HTML with every header a page carries.
#[must_use]
pub fn html(status: StatusCode, page: Markup) -> Response {
    let mut resp = (status, page.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// `303 See Other` to a local path (after a form post, so a reload does not post again).
#[must_use]
pub fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// No live session: sign in first, then come back here (if this was a page to come back
    /// to).
    SignIn(Option<ReturnTo>),
    /// Anything else: an error page with the API's status and outward description.
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn(return_to) => {
                let location = match return_to {
                    Some(r) if r != ReturnTo::home() => {
                        let query = serde_urlencoded::to_string([("return_to", r.as_str())])
                            .unwrap_or_default();
                        format!("/login?{query}")
                    }
                    _ => "/login".to_owned(),
                };
                see_other(&location)
            }
            Self::Api(e) => error_page(e),
        }
    }
}

/// The title of an error page, by what went wrong.
fn error_title(e: &ApiError) -> &'static str {
    match e {
        ApiError::Csrf(_) => "This form could not be accepted",
        ApiError::Forbidden => "Not allowed",
        ApiError::NotFound => "Page not found",
        ApiError::MethodNotAllowed => "Not something this page does",
        ApiError::RateLimited { .. } => "Too many attempts",
        ApiError::Overloaded { .. } | ApiError::Unavailable(_) => "Temporarily unavailable",
        ApiError::Internal(_) => "Something went wrong",
        ApiError::Unauthenticated | ApiError::InvalidToken => "Please sign in",
        _ => "That request could not be used",
    }
}

/// An API error as a page: the status, `Retry-After` and log line of [`ApiError`]'s own
/// mapping, with HTML instead of JSON.
#[must_use]
pub fn error_page(e: ApiError) -> Response {
    let title = error_title(&e);
    let (_, _, description) = e.parts();
    let detail = sentence(&description);
    replace_body(e, |status| views::error(status.as_u16(), title, &detail))
}

/// The answer of [`ApiError::into_response`] (status, headers, log) with the page `render`
/// makes for its status instead of the JSON body.
fn replace_body(e: ApiError, render: impl FnOnce(StatusCode) -> Markup) -> Response {
    let api = e.into_response();
    let status = api.status();
    let mut resp = html(status, render(status));
    if let Some(v) = api.headers().get(header::RETRY_AFTER) {
        resp.headers_mut().insert(header::RETRY_AFTER, v.clone());
    }
    resp
}

/// A form page shown again after its post failed, with the reason above the form.
fn form_failure(e: ApiError, render: impl FnOnce(&str) -> Markup) -> Response {
    let (_, _, description) = e.parts();
    let message = sentence(&description);
    replace_body(e, |_| render(&message))
}

/// `unknown user or wrong password` → `Unknown user or wrong password.`; field names read as
/// words (`current_password is wrong` → `Current password is wrong.`).
fn sentence(text: &str) -> String {
    let words = text.replace('_', " ");
    let mut chars = words.chars();
    let mut s: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// Whether a request is a browser's, asking for a page: for the fallbacks, which answer pages
/// with a page and the API with JSON.
#[must_use]
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

/// The answer to a request nothing routes (or routes with another method): a page for a
/// browser, the API's JSON error otherwise.
#[must_use]
pub fn fallback(headers: &HeaderMap, e: ApiError) -> Response {
    if wants_html(headers) {
        error_page(e)
    } else {
        e.into_response()
    }
}
