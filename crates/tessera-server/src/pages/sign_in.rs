//! Signing in, registering and signing out through forms: the API's flows (`service::sign_in`,
//! `service::sign_up`, `service::logout`) behind pages.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use super::authorize::{allow_form_action, sign_in_redirect_origin};
use super::extract::{FORM_COOKIE, PageSession, SessionForm, SignInForm, form_cookie};
use super::return_to::ReturnTo;
use super::{PageError, form_failure, html, see_other, views};
use crate::auth::Credential;
use crate::error::ApiError;
use crate::routes::{session_cookie_header, set_device_cookie};
use crate::service::{self, BrowserSession, ClientContext};
use crate::state::AppState;

/// What the sign-in page's address may carry.
#[derive(Deserialize, Default)]
struct LoginQuery {
    return_to: Option<String>,
    notice: Option<String>,
}

/// The notices other pages send the browser to `/login` with.
fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "signed-out" => Some("You are signed out."),
        "password-changed" => Some("Your password was changed. Sign in with the new one."),
        _ => None,
    }
}

/// The pre-session CSRF token the browser holds, or a fresh one with the cookie setting it.
fn form_token(headers: &HeaderMap) -> Result<(String, Option<HeaderValue>), ApiError> {
    if let Some(token) = form_cookie(headers) {
        return Ok((token.to_owned(), None));
    }
    let token = super::extract::new_form_token()?;
    let cookie = HeaderValue::from_str(&format!(
        "{FORM_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict"
    ))
    .map_err(|_| ApiError::Internal("form cookie".into()))?;
    Ok((token, Some(cookie)))
}

fn with_cookie(mut resp: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// `GET /login`.
pub(super) async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let q: LoginQuery =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let (csrf, cookie) = form_token(&headers)?;
    let return_to = q.return_to.as_deref().and_then(ReturnTo::parse);
    let page = views::login(
        &csrf,
        "",
        return_to.as_ref().map(ReturnTo::as_str),
        None,
        notice(q.notice.as_deref()),
    );
    let mut resp = html(StatusCode::OK, page);
    if let Some(origin) = sign_in_redirect_origin(&state, return_to.as_ref()).await {
        allow_form_action(&mut resp, &origin);
    }
    Ok(with_cookie(resp, cookie))
}

/// The sign-in form.
#[derive(Deserialize)]
pub(super) struct LoginFields {
    username: String,
    password: String,
    return_to: Option<String>,
}

/// `POST /login`: the API's password login and browser session, then `303` to `return_to`
/// (a local path) or the account page.
pub(super) async fn login(
    State(state): State<AppState>,
    client: ClientContext,
    SignInForm { csrf, fields }: SignInForm<LoginFields>,
) -> Response {
    let target = ReturnTo::or_home(fields.return_to.as_deref());
    let started = async {
        let (_, browser) =
            service::sign_in(&state, &fields.username, fields.password, &client).await?;
        signed_in(browser, &target)
    };
    match started.await {
        Ok(resp) => resp,
        Err(e) => {
            let return_to = fields.return_to.as_deref().and_then(ReturnTo::parse);
            let mut resp = form_failure(e, |message| {
                views::login(
                    &csrf,
                    &fields.username,
                    return_to.as_ref().map(ReturnTo::as_str),
                    Some(message),
                    None,
                )
            });
            if let Some(origin) = sign_in_redirect_origin(&state, return_to.as_ref()).await {
                allow_form_action(&mut resp, &origin);
            }
            resp
        }
    }
}

/// `GET /register`.
pub(super) async fn register_page(headers: HeaderMap) -> Result<Response, PageError> {
    let (csrf, cookie) = form_token(&headers)?;
    Ok(with_cookie(
        html(StatusCode::OK, views::register(&csrf, "", None)),
        cookie,
    ))
}

/// The registration form.
#[derive(Deserialize)]
pub(super) struct RegisterFields {
    username: String,
    password: String,
}

/// `POST /register`: the API's registration (policy, throttle), then a browser session and
/// its device cookie, as after a sign-in.
pub(super) async fn register(
    State(state): State<AppState>,
    client: ClientContext,
    SignInForm { csrf, fields }: SignInForm<RegisterFields>,
) -> Response {
    let started = async {
        let (_, browser) =
            service::sign_up(&state, &fields.username, fields.password, &client).await?;
        signed_in(browser, &ReturnTo::home())
    };
    match started.await {
        Ok(resp) => resp,
        Err(e) => form_failure(e, |message| {
            views::register(&csrf, &fields.username, Some(message))
        }),
    }
}

/// The answer to a sign-in or registration: the session and device cookies, and `303` to
/// `target`.
fn signed_in(browser: BrowserSession, target: &ReturnTo) -> Result<Response, ApiError> {
    let session = &browser.session;
    let cookie = session_cookie_header(
        browser.token.expose_secret(),
        session.expires_at.since(session.created_at),
    )?;
    let mut resp = see_other(target.as_str());
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    set_device_cookie(&mut resp, browser.device_cookie);
    Ok(resp)
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub(super) struct NoFields {}

/// `POST /logout`: ends the session tree, clears the cookie and what the site stored, and
/// sends the browser to `/login`.
pub(super) async fn logout(
    State(state): State<AppState>,
    client: ClientContext,
    SessionForm { signed_in, .. }: SessionForm<NoFields>,
) -> Result<Response, PageError> {
    let PageSession { session, token } = signed_in;
    service::logout(&state, &Credential::Cookie { session, token }, &client).await?;
    let mut resp = see_other("/login?notice=signed-out");
    let h = resp.headers_mut();
    h.insert(header::SET_COOKIE, session_cookie_header("", 0)?);
    h.insert(
        axum::http::HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cookies\", \"storage\""),
    );
    Ok(resp)
}
