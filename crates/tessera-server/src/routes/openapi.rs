//! The OpenAPI 3.1 description of the API, served at `GET /openapi.json`.
//!
//! Design decision: the document is generated from the code — each handler's
//! `#[utoipa::path]` annotation and the body types' `ToSchema` — never kept by hand, and a
//! test walks [`route_table`](super::route_table) (with the pages' OAuth endpoint,
//! `/oauth/authorize`) against it both ways, so a route cannot be added without being
//! documented, nor documented without being routed. It is built once, on first request.

use std::sync::OnceLock;

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToResponse};

use super::{account, admin, admin_audit, admin_users, meta, oauth, revocations, userinfo};
use crate::auth::CSRF_HEADER;
use crate::error::ErrorBody;
use crate::extract::SESSION_COOKIE;
use crate::pages::authorize;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "Cookie sessions for browsers (with a CSRF defence), short-lived access JWTs with rotating refresh tokens for apps, and the keys to verify them. Every error is an OAuth2-style body `{\"error\", \"error_description\"}` with a 4xx status for bad input; a 5xx only ever means the server or its store failed.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/")),
    tags(
        (name = "account", description = "Users, cookie sessions and the session list."),
        (name = "oauth", description = "OAuth2 token, revocation and introspection endpoints (RFC 6749, RFC 7009, RFC 7662), and the authorization endpoint of the code flow, for a browser (its answers are pages and redirects)."),
        (name = "resource", description = "Protected resources."),
        (name = "discovery", description = "Metadata and public keys."),
        (name = "operations", description = "Health, readiness, metrics and this document."),
        (name = "revocations", description = "The revocation list and stream resource servers follow (client-authenticated)."),
        (name = "admin", description = "For users marked admin (`tessera users create --admin`); anyone else gets 403."),
    ),
    paths(
        account::register,
        account::login,
        account::list_sessions,
        account::revoke_other_sessions,
        account::revoke_session,
        account::current_session,
        account::logout,
        userinfo::userinfo,
        account::change_password,
        oauth::token,
        oauth::revoke,
        oauth::introspect,
        authorize::authorize,
        authorize::decide,
        revocations::list,
        revocations::stream,
        admin::list_clients,
        admin::create_client,
        admin::delete_client,
        admin_users::find_users,
        admin_users::disable_user,
        admin_users::user_sessions,
        admin_users::end_session,
        admin_audit::rotate_keys,
        admin_audit::audit,
        meta::discovery,
        meta::jwks,
        meta::healthz,
        meta::readyz,
        meta::metrics,
        meta::openapi,
    ),
    components(
        schemas(ErrorBody),
        responses(
            BadRequest,
            TokenError,
            Unauthorized,
            InvalidCredentials,
            InvalidClient,
            CsrfRejected,
            Forbidden,
            NotFound,
            MethodNotAllowed,
            UsernameTaken,
            PayloadTooLarge,
            UnsupportedMediaType,
            RateLimited,
            Unavailable,
            InternalError,
        ),
    ),
    modifiers(&SecuritySchemes),
)]
struct ApiDoc;

/// The document, as a value (for tests and tools).
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as JSON, serialised on first use and kept.
pub(super) fn json() -> Result<&'static str, &'static str> {
    static JSON: OnceLock<Result<String, String>> = OnceLock::new();
    JSON.get_or_init(|| document().to_json().map_err(|e| e.to_string()))
        .as_deref()
        .map_err(String::as_str)
}

/// The four ways a caller proves who it is, and the CSRF header that goes with the cookie.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |format: &str, description: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.bearer_format = Some(format.to_owned());
            http.description = Some(description.to_owned());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            "bearerJwt",
            bearer(
                "JWT",
                "An access JWT (RFC 9068, `typ: at+jwt`) issued by `/oauth/token`, verified against the key ring and the revocation list without a store lookup.",
            ),
        );
        components.add_security_scheme(
            "bearerSession",
            bearer(
                "tss_",
                "An opaque session token (`tss_` prefix and a checksum) sent as a bearer credential. Browsers never send it on their own, so no CSRF token is needed.",
            ),
        );
        components.add_security_scheme(
            "sessionCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The browser session cookie set by `POST /v1/sessions`. Sending it twice is refused.",
            ))),
        );
        components.add_security_scheme(
            "csrfToken",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                // The canonical spelling; header names are case-insensitive.
                "X-CSRF-Token",
                "The session's `csrf_token` (from `POST /v1/sessions` or `GET /v1/session`). Required, with the cookie, on every cookie-authenticated write.",
            ))),
        );
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description =
            Some("client_secret_basic: the client id and secret (RFC 6749 §2.3.1).".to_owned());
        components.add_security_scheme("clientBasic", SecurityScheme::Http(basic));
        debug_assert!(CSRF_HEADER.as_str().eq_ignore_ascii_case("X-CSRF-Token"));
    }
}

/// An error answer: the [`ErrorBody`] schema, with what the status means here.
fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Error")))
            .build(),
    )
}

fn header(description: &str, schema: utoipa::openapi::schema::Type) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(schema)
                .build(),
        )
        .description(Some(description))
        .build()
}

/// Declares the shared error answers (`components.responses`), each named by a type the
/// handlers' annotations refer to.
macro_rules! shared_responses {
    ($($(#[$doc:meta])* $name:ident => $response:expr;)*) => {$(
        $(#[$doc])*
        pub(crate) struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), RefOr::T($response))
            }
        }
    )*};
}

shared_responses! {
    /// 400 `invalid_request` or `weak_password`.
    BadRequest => error_response(
        "The request is malformed (`invalid_request`), or the password breaks the policy (`weak_password`).",
    ).build();
    /// 400 from the token endpoint (RFC 6749 §5.2).
    TokenError => error_response(
        "RFC 6749 §5.2: `invalid_request` (missing parameter, malformed scope or body), `invalid_grant` (wrong username or password; refresh token invalid, expired, revoked or reused), `unsupported_grant_type`, `unauthorized_client` (the client may not use this grant), `invalid_scope` (beyond the client's), `invalid_target` (token exchange to an audience this server does not issue for), `invalid_dpop_proof` (RFC 9449 §5: a `DPoP` proof that is malformed, stale, replayed or by the wrong key, or missing where the client, the refresh token or the subject token is DPoP-bound).",
    ).build();
    /// 401 `unauthenticated` or `invalid_token`.
    Unauthorized => error_response(
        "No credential (`unauthenticated`) or an invalid one (`invalid_token`, whatever the reason; also a DPoP-bound token presented as `Bearer`), or a DPoP-bound token without a valid proof by its key for this request (`invalid_dpop_proof`, RFC 9449 §7.1).",
    )
    .header(
        "WWW-Authenticate",
        header(
            "`Bearer realm=\"tessera\"`, with `error=\"invalid_token\"` when a credential was presented; `DPoP realm=\"tessera\", error=…, algs=\"EdDSA ES256\"` when a DPoP-bound token was misused.",
            utoipa::openapi::schema::Type::String,
        ),
    )
    .build();
    /// 401 `invalid_credentials`.
    InvalidCredentials => error_response(
        "Unknown user or wrong password: one answer for both (`invalid_credentials`).",
    ).build();
    /// 401 `invalid_client`.
    InvalidClient => error_response(
        "Client authentication failed (`invalid_client`), with `WWW-Authenticate: Basic`.",
    )
    .header(
        "WWW-Authenticate",
        header("`Basic realm=\"tessera\"`.", utoipa::openapi::schema::Type::String),
    )
    .build();
    /// 403 `csrf_rejected`.
    CsrfRejected => error_response(
        "The CSRF defence refused the request (`csrf_rejected`): cross-site, foreign `Origin`, or a missing or wrong `X-CSRF-Token`.",
    ).build();
    /// 403 `forbidden` (admin routes), or `csrf_rejected`.
    Forbidden => error_response(
        "Authenticated, but not an administrator (`forbidden`), or a cookie write that failed the CSRF checks (`csrf_rejected`).",
    ).build();
    /// 404 `not_found`.
    NotFound => error_response("No such resource, or not the caller's (`not_found`).").build();
    /// 405 `method_not_allowed`, on any path.
    MethodNotAllowed => error_response(
        "The path exists but not with this method (`method_not_allowed`); `Allow` lists the methods that are.",
    ).build();
    /// 409 `username_taken`.
    UsernameTaken => error_response("The username is taken (`username_taken`).").build();
    /// 413.
    PayloadTooLarge => error_response("The body is over 16 KiB (`invalid_request`).").build();
    /// 415.
    UnsupportedMediaType => error_response(
        "The body is neither `application/json` nor `application/x-www-form-urlencoded` (`invalid_request`).",
    ).build();
    /// 429 `slow_down`.
    RateLimited => error_response(
        "Too many login attempts for this client address or account (`slow_down`).",
    )
    .header(
        "Retry-After",
        header(
            "Seconds until the next attempt may succeed.",
            utoipa::openapi::schema::Type::Integer,
        ),
    )
    .build();
    /// 503 `temporarily_unavailable`.
    Unavailable => error_response(
        "The credential store is unreachable, or too many password checks are queued (`temporarily_unavailable`); the credential may be fine. An overload carries `Retry-After`.",
    ).build();
    /// 500 `server_error`, on any path.
    InternalError => error_response(
        "A server-side failure (`server_error`); the details are logged, never sent.",
    ).build();
}

/// Schemas of bodies that `tessera-core` builds as JSON (the JWKS, a client's listing, a
/// revocation on the wire, an introspection answer). These types only describe them; a test
/// in the suite checks real bodies against the properties documented here.
#[allow(dead_code)]
pub(super) mod shapes {
    use utoipa::ToSchema;

    /// A public key. HMAC keys are never published.
    #[derive(ToSchema)]
    pub(crate) struct Jwk {
        /// `OKP`, `EC` or `RSA`.
        kty: String,
        /// `Ed25519` or `P-256`.
        crv: Option<String>,
        x: Option<String>,
        y: Option<String>,
        n: Option<String>,
        e: Option<String>,
        /// `EdDSA`, `ES256`, `RS256` or `PS256`.
        alg: String,
        /// Always `sig`.
        #[schema(rename = "use")]
        use_: String,
        kid: String,
    }

    /// The published key set: the next, current and retiring keys.
    #[derive(ToSchema)]
    pub(crate) struct JwkSet {
        keys: Vec<Jwk>,
    }

    /// A registered client, as operators see it: everything but the secret hash.
    #[derive(ToSchema)]
    pub(crate) struct ClientListing {
        client_id: String,
        name: String,
        /// Space-separated scope tokens the client may be granted.
        scope: String,
        redirect_uris: Vec<String>,
        public: bool,
        first_party: bool,
        dpop: bool,
        /// Seconds since the Unix epoch.
        created_at: i64,
    }

    /// One revocation: exactly one of `jti`, `sid`, `sub` (with `not_before`) or `kid`, and
    /// `exp`.
    #[derive(ToSchema)]
    pub(crate) struct WireRevocation {
        jti: Option<String>,
        sid: Option<String>,
        /// A principal: every token whose `sub` or `client_id` is this id and that was issued
        /// before `not_before` is revoked (a user's password change, a client's deletion).
        sub: Option<String>,
        not_before: Option<i64>,
        kid: Option<String>,
        /// When the revoked tokens expire anyway, seconds since the Unix epoch.
        exp: i64,
    }

    /// A token's state (RFC 7662 §2.2). Anything not live is `{"active": false}` alone.
    #[derive(ToSchema)]
    pub(crate) struct Introspection {
        active: bool,
        /// `Bearer`, `DPoP` (a token bound to a key) or `session`.
        token_type: Option<String>,
        iss: Option<String>,
        sub: Option<String>,
        aud: Option<String>,
        exp: Option<i64>,
        iat: Option<i64>,
        jti: Option<String>,
        client_id: Option<String>,
        scope: Option<String>,
        sid: Option<String>,
        username: Option<String>,
        /// A DPoP-bound token's confirmation (RFC 9449 §6.2): `{"jkt": "<thumbprint>"}`.
        #[schema(value_type = Option<Object>)]
        cnf: Option<serde_json::Value>,
    }
}

#[cfg(test)]
mod tests;
