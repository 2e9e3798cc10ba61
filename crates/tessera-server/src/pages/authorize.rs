//! `/oauth/authorize`: the authorization endpoint of the code flow, and its consent page
//! (`service::authorize`, `service::decide`).
//!
//! The endpoint is a page: without a session the browser is sent to sign in and comes back
//! here ([`PageSession`]); an unknown client or redirect URI is an error page, never a
//! redirect; the consent form is CSRF-checked like every page form ([`SessionForm`]).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::{Markup, html as markup};
use serde::Deserialize;
use tessera_core::authorization::RequestParams;
use url::Url;
use utoipa::{IntoParams, ToSchema};

use super::extract::{PageSession, SessionForm};
use super::return_to::ReturnTo;
use super::views::{Viewer, layout};
use super::{CSP, PageError, html, see_other};
use crate::error::ApiError;
use crate::service::{self, Authorize, Consent, Decision};
use crate::state::AppState;

/// The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3), each at most
/// once (a repeated one is refused); others are ignored (RFC 6749 §3.1).
#[derive(Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub(crate) struct Request {
    /// The registered client.
    client_id: Option<String>,
    /// `code`, the only response type.
    response_type: Option<String>,
    /// One of the client's registered redirect URIs, exactly.
    redirect_uri: Option<String>,
    /// The PKCE challenge: BASE64URL(SHA-256(verifier)), 43 characters.
    code_challenge: Option<String>,
    /// `S256`, the only method (`plain` is refused).
    code_challenge_method: Option<String>,
    /// Opaque to Tessera; returned with the code or the error.
    state: Option<String>,
    /// Space-separated scopes within the client's.
    scope: Option<String>,
}

impl Request {
    fn split(self) -> (Option<String>, RequestParams) {
        let params = RequestParams {
            response_type: self.response_type,
            redirect_uri: self.redirect_uri,
            code_challenge: self.code_challenge,
            code_challenge_method: self.code_challenge_method,
            state: self.state,
            scope: self.scope,
        };
        (self.client_id, params)
    }
}

/// The authorization endpoint of the code flow (OAuth 2.1), for a browser. Without a session
/// it sends the browser to sign in and back here; with one, it shows the consent page (a
/// first-party client skips it and gets its code at once). A malformed request for a valid
/// client and redirect URI goes back to the client as `?error=…&state=…&iss=…`; an unknown
/// client or redirect URI is an error page, never a redirect.
#[utoipa::path(
    get,
    path = "/oauth/authorize",
    tag = "oauth",
    operation_id = "authorize",
    params(Request),
    security((), ("sessionCookie" = [])),
    responses(
        (status = 200, description = "The consent page.", body = String, content_type = "text/html"),
        (status = 303, description = "To `/login?return_to=…` without a session; else to the client's redirect URI with `code`, `state` and `iss` (RFC 9207), or an `error`.",
            headers(("Location" = String, description = "Where the browser goes next."))),
        (status = 400, description = "An error page: unknown client, unregistered redirect URI, a repeated or malformed parameter.", body = String, content_type = "text/html"),
        (status = 503, description = "An error page: the store cannot answer.", body = String, content_type = "text/html"),
    )
)]
pub(crate) async fn authorize(
    State(state): State<AppState>,
    signed_in: PageSession,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let request: Request = serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::InvalidRequest(e.to_string().into()))?;
    let (client_id, params) = request.split();
    let user_id = signed_in.session.user_id.clone();
    match service::authorize(&state, &user_id, client_id.as_deref(), params).await? {
        Authorize::Redirect(to) => Ok(see_other(&to)),
        Authorize::Consent(consent) => {
            let user = service::user(&state, &user_id).await?;
            let csrf = signed_in.csrf_token();
            let viewer = Viewer {
                username: &user.username,
                is_admin: user.is_admin,
                csrf_token: &csrf,
            };
            Ok(consent_page(&viewer, &consent))
        }
    }
}

/// The consent form: the request's fields again, and the user's answer. (The form's
/// `csrf_token` is read by [`SessionForm`].)
#[derive(Deserialize, ToSchema)]
pub(crate) struct DecisionForm {
    #[serde(flatten)]
    request: Request,
    /// `allow` or `deny`. (Optional here so that a form without it is refused for its CSRF
    /// proof first.)
    decision: Option<String>,
}

/// The consent page's answer: a form from that page (same origin, its `csrf_token`, a session)
/// with the request's fields and `decision`.
#[utoipa::path(
    post,
    path = "/oauth/authorize",
    tag = "oauth",
    operation_id = "authorize_decision",
    security((), ("sessionCookie" = [])),
    request_body(content((DecisionForm = "application/x-www-form-urlencoded")),
        description = "The consent page's hidden fields, `decision` and the page's `csrf_token`."),
    responses(
        (status = 303, description = "To the client's redirect URI with `code`, `state` and `iss`, or `error=access_denied`; to `/login` without a session.",
            headers(("Location" = String, description = "Where the browser goes next."))),
        (status = 400, description = "An error page: a decision other than `allow` or `deny`, an unknown client or redirect URI.", body = String, content_type = "text/html"),
        (status = 403, description = "An error page: the form did not come from Tessera's own page (origin or `csrf_token`).", body = String, content_type = "text/html"),
        (status = 413, description = "An error page: the form is too large.", body = String, content_type = "text/html"),
        (status = 503, description = "An error page: the store cannot answer.", body = String, content_type = "text/html"),
    )
)]
pub(crate) async fn decide(
    State(state): State<AppState>,
    SessionForm { signed_in, fields }: SessionForm<DecisionForm>,
) -> Result<Response, PageError> {
    let decision = match fields.decision.as_deref() {
        Some("allow") => Decision::Allow,
        Some("deny") => Decision::Deny,
        _ => return Err(ApiError::InvalidRequest("decision must be allow or deny".into()).into()),
    };
    let (client_id, params) = fields.request.split();
    let to = service::decide(
        &state,
        &signed_in.session.user_id,
        client_id.as_deref(),
        params,
        decision,
    )
    .await?;
    Ok(see_other(&to))
}

/// The consent page. Its CSP lets the form's answer redirect to the client — and nowhere
/// else: `form-action` also governs the redirects that follow a form post.
fn consent_page(viewer: &Viewer<'_>, consent: &Consent) -> Response {
    let p = &consent.params;
    let redirect = p.redirect_uri.as_deref().unwrap_or_default();
    let origin = Url::parse(redirect)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let hidden = [
        ("client_id", Some(consent.client_id.as_str())),
        ("response_type", p.response_type.as_deref()),
        ("redirect_uri", p.redirect_uri.as_deref()),
        ("code_challenge", p.code_challenge.as_deref()),
        ("code_challenge_method", p.code_challenge_method.as_deref()),
        ("state", p.state.as_deref()),
        ("scope", p.scope.as_deref()),
    ];
    let body: Markup = markup! {
        h1 { "Allow " (consent.client_name) " to use your account?" }
        p { "You are signed in as " strong { (viewer.username) } "." }
        @if consent.scope.is_empty() {
            p { "It asks for no particular permission: only who you are." }
        } @else {
            p { "It asks for:" }
            ul.scopes { @for s in consent.scope.iter() { li { code { (s) } } } }
        }
        p { "If you allow it, you will be sent back to " strong { (origin) } "." }
        form method="post" action="/oauth/authorize" {
            input type="hidden" name="csrf_token" value=(viewer.csrf_token);
            @for (name, value) in hidden {
                @if let Some(v) = value { input type="hidden" name=(name) value=(v); }
            }
            div.actions {
                button type="submit" name="decision" value="allow" { "Allow" }
                button.secondary type="submit" name="decision" value="deny" { "Deny" }
            }
        }
    };
    let title = format!("Allow {}?", consent.client_name);
    let mut resp = html(StatusCode::OK, layout(&title, Some(viewer), &body));
    allow_form_action(&mut resp, &origin);
    resp
}

/// Widens a page's CSP so that its form's post may be redirected to `origin` as well.
pub(super) fn allow_form_action(resp: &mut Response, origin: &str) {
    let csp = CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

/// Where a sign-in that goes on to `return_to` may be redirected, besides this origin: when
/// `return_to` is an authorization request, the origin of the redirect URI it would send the
/// browser to (a first-party client, or consent already given, goes there straight from the
/// sign-in form's post) — but only for a known client and a registered redirect URI, so the
/// sign-in page never lets a made-up `return_to` widen its CSP.
///
/// A store failure here leaves the strict CSP: the sign-in still works, and only that
/// redirect is blocked.
pub(super) async fn sign_in_redirect_origin(
    state: &AppState,
    return_to: Option<&ReturnTo>,
) -> Option<String> {
    let (path, query) = return_to?.as_str().split_once('?')?;
    if path != "/oauth/authorize" {
        return None;
    }
    let request: Request = serde_urlencoded::from_str(query).ok()?;
    let (client_id, params) = request.split();
    service::redirect_origin(state, client_id.as_deref(), &params)
        .await
        .ok()
        .flatten()
}
