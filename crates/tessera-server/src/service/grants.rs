//! The token endpoint's grants, and the app sessions the password and code grants open
//! (access tokens are minted by `access.rs`, revoked by `revocation.rs`).
//!
//! [`GrantType`] is the closed set of grants: one `match` drives the endpoint's dispatch, its
//! `unsupported_grant_type` answer and what discovery advertises, so adding a grant is adding a
//! variant and the function it dispatches to.

use serde::{Deserialize, Serialize};
use tessera_core::dpop::VerifiedProof;
use tessera_core::opaque::{OpaqueToken, TokenKind, random_id};
use tessera_core::refresh::RefreshFamily;
use tessera_core::session::SessionKind;
use tessera_store::User;

use super::access::{Binding, issue_access, token_type};
use super::authorize::{Redeem, redeem};
use super::clients::{authenticate_client, client_credentials, identify_public_client};
use super::exchange::{Exchange, exchange};
use super::refresh_grant::refresh;
use super::sessions::{confirm_login, new_session};
use super::{ClientContext, device_cookie, internal, login};
use crate::client_auth::{BasicCredentials, ClientCredentials};
use crate::error::ApiError;
use crate::state::AppState;

/// `client_id` of tokens issued to Tessera's own first-party apps (no registered client).
pub const FIRST_PARTY_CLIENT: &str = "first-party";

/// The grants `/oauth/token` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantType {
    /// RFC 6749 §4.3, for first-party apps: username and password.
    Password,
    /// RFC 6749 §6: rotate a refresh token.
    RefreshToken,
    /// RFC 6749 §4.4: a confidential client's token for itself.
    ClientCredentials,
    /// RFC 8693: a session token or access JWT for an audience-bound access JWT.
    TokenExchange,
    /// OAuth 2.1 §4.1.3: an authorization code and its PKCE verifier.
    AuthorizationCode,
}

impl GrantType {
    /// Every grant, in the order discovery lists them.
    pub const ALL: [Self; 5] = [
        Self::AuthorizationCode,
        Self::Password,
        Self::RefreshToken,
        Self::ClientCredentials,
        Self::TokenExchange,
    ];

    /// The `grant_type` value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
            Self::AuthorizationCode => "authorization_code",
        }
    }

    /// The grant named by a `grant_type` value.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == value)
    }

    /// The values, as discovery's `grant_types_supported` lists them.
    #[must_use]
    pub fn supported() -> Vec<&'static str> {
        Self::ALL.map(Self::as_str).to_vec()
    }
}

/// The `grant_type` values, in the OpenAPI description: exactly [`GrantType::supported`].
impl utoipa::PartialSchema for GrantType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Self::supported()))
            .into()
    }
}

impl utoipa::ToSchema for GrantType {}

/// Every parameter any grant uses (RFC 6749); each grant reads its own.
// `Debug` shows which parameters were sent, never the password or the refresh token.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    #[schema(value_type = GrantType, inline)]
    grant_type: String,
    /// `password` grant.
    username: Option<String>,
    /// `password` grant.
    #[schema(format = Password)]
    password: Option<String>,
    /// `refresh_token` grant: a `trt_` token.
    refresh_token: Option<String>,
    /// `password` and `client_credentials` grants: space-separated RFC 6749 §3.3 scope tokens
    /// (for `client_credentials`, a subset of the client's; default all of them).
    #[schema(max_length = 1024)]
    scope: Option<String>,
    /// client_secret_post: the client id (instead of Basic).
    client_id: Option<String>,
    /// client_secret_post: the client secret.
    #[schema(format = Password)]
    client_secret: Option<String>,
    /// Token exchange (RFC 8693): a `tss_` session token or an access JWT of this server.
    subject_token: Option<String>,
    /// Token exchange: the subject token's type,
    /// `urn:ietf:params:oauth:token-type:access_token`.
    subject_token_type: Option<String>,
    /// Token exchange: the audience of the new token — the issuer or one configured with
    /// `--audience` (else `invalid_target`).
    audience: Option<String>,
    /// `authorization_code` grant: the `tac_` code.
    code: Option<String>,
    /// `authorization_code` grant: the redirect URI of the authorization request, exactly.
    redirect_uri: Option<String>,
    /// `authorization_code` grant: the PKCE verifier (RFC 7636), 43-128 characters.
    #[schema(min_length = 43, max_length = 128)]
    code_verifier: Option<String>,
}

/// The token endpoint's success body (RFC 6749 §5.1).
// `Debug` never prints the tokens.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// An access JWT (RFC 9068).
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(value_type = String)]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// A single-use `trt_` refresh token, when one is issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scope, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Token exchange only (RFC 8693 §2.2.1): what `access_token` is,
    /// `urn:ietf:params:oauth:token-type:access_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub issued_token_type: Option<&'static str>,
}

/// What the token endpoint hands out: the body, and for a password login a device cookie,
/// so an app that keeps cookies is throttled on its own device like a browser. `Debug` never
/// prints the tokens or the cookie.
pub struct Granted {
    /// The RFC 6749 §5.1 body.
    pub body: TokenResponse,
    /// A fresh device cookie for the logged-in account, if one was made.
    pub device_cookie: Option<String>,
}

/// What `Debug` shows of a secret: whether it is there, never what it is.
fn redacted(secret: Option<&String>) -> Option<&'static str> {
    secret.map(|_| "<redacted>")
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("username", &self.username)
            .field("password", &redacted(self.password.as_ref()))
            .field("refresh_token", &redacted(self.refresh_token.as_ref()))
            .field("scope", &self.scope)
            .field("client_id", &self.client_id)
            .field("client_secret", &redacted(self.client_secret.as_ref()))
            .field("subject_token", &redacted(self.subject_token.as_ref()))
            .field("subject_token_type", &self.subject_token_type)
            .field("audience", &self.audience)
            .field("code", &redacted(self.code.as_ref()))
            .field("redirect_uri", &self.redirect_uri)
            .field("code_verifier", &redacted(self.code_verifier.as_ref()))
            .finish()
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &redacted(self.refresh_token.as_ref()))
            .field("scope", &self.scope)
            .field("issued_token_type", &self.issued_token_type)
            .finish()
    }
}

impl std::fmt::Debug for Granted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Granted")
            .field("body", &self.body)
            .field("device_cookie", &redacted(self.device_cookie.as_ref()))
            .finish()
    }
}

fn required(v: Option<String>, name: &'static str) -> Result<String, ApiError> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::InvalidRequest(format!("missing parameter {name}").into()))
}

/// A requested scope, read by the one RFC 6749 §3.3 parser ([`tessera_core::client::Scope`]):
/// its tokens, each once, in a canonical order.
fn scope(raw: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let scope = tessera_core::client::Scope::parse(&raw)
        .map_err(|_| ApiError::InvalidRequest("malformed scope".into()))?;
    Ok(Some(scope.to_string()))
}

/// `POST /oauth/token`: authenticates the client if the request names one (Basic or the
/// body), then dispatches on the grant type. `password` needs no client (first-party apps); a
/// client that does authenticate on it must be first-party. A refresh token answers only to
/// the client it was issued to. A public client, having no secret, names itself with
/// `client_id` alone — accepted only by the grants made for it (`authorization_code`,
/// `refresh_token`).
///
/// # Errors
/// `UnsupportedGrantType`, `InvalidRequest`, `InvalidClient`, `UnauthorizedClient`,
/// `InvalidGrant`, `InvalidScope`, `RateLimited`, or a store failure.
pub async fn token(
    state: &AppState,
    mut req: TokenRequest,
    basic: BasicCredentials,
    client: &ClientContext,
    proof: Option<VerifiedProof>,
) -> Result<Granted, ApiError> {
    let grant = GrantType::parse(&req.grant_type).ok_or(ApiError::UnsupportedGrantType)?;
    let credentials =
        ClientCredentials::from_request(basic, req.client_id.take(), req.client_secret.take())?;
    let public_allowed = matches!(
        grant,
        GrantType::AuthorizationCode | GrantType::RefreshToken
    );
    let registered = match credentials {
        Some(c) if c.secret.is_none() && public_allowed => {
            Some(identify_public_client(state, &c.id).await?)
        }
        Some(c) => Some(authenticate_client(state, &c).await?),
        None => None,
    };
    if grant == GrantType::Password && registered.as_ref().is_some_and(|c| !c.first_party) {
        return Err(ApiError::UnauthorizedClient(
            "only first-party clients may use this grant",
        ));
    }
    if proof.is_none() && registered.as_ref().is_some_and(|c| c.dpop) {
        return Err(ApiError::InvalidDpopProof(
            "this client must send a DPoP proof",
        ));
    }
    let jkt = proof.as_ref().map(VerifiedProof::jkt);
    match grant {
        GrantType::AuthorizationCode => {
            let owner = registered.as_ref().ok_or(ApiError::InvalidClient)?;
            let request = Redeem {
                code: required(req.code, "code")?,
                redirect_uri: required(req.redirect_uri, "redirect_uri")?,
                code_verifier: required(req.code_verifier, "code_verifier")?,
            };
            // As for the password grant: the refresh token is bound when the app has no secret.
            let binding = Binding {
                access: jkt,
                refresh: jkt.filter(|_| owner.public),
            };
            Ok(Granted {
                body: redeem(state, owner, request, client, binding).await?,
                device_cookie: None,
            })
        }
        GrantType::ClientCredentials => Ok(Granted {
            body: client_credentials(state, registered.as_ref(), req.scope.as_deref(), jkt).await?,
            device_cookie: None,
        }),
        GrantType::TokenExchange => {
            let request = Exchange {
                subject_token: required(req.subject_token, "subject_token")?,
                subject_token_type: required(req.subject_token_type, "subject_token_type")?,
                audience: req.audience.filter(|a| !a.is_empty()),
                scope: req.scope.filter(|s| !s.is_empty()),
            };
            Ok(Granted {
                body: exchange(state, registered.as_ref(), request, proof.as_ref()).await?,
                device_cookie: None,
            })
        }
        GrantType::Password => {
            let username = required(req.username, "username")?;
            let password = required(req.password, "password")?;
            let scope = scope(req.scope)?;
            // RFC 6749 §5.2: wrong credentials (or a login lost to a password change) are
            // `invalid_grant` here.
            let as_grant = |e| match e {
                ApiError::InvalidCredentials => {
                    ApiError::InvalidGrant("unknown user or wrong password")
                }
                other => other,
            };
            let user = login(state, &username, password, client)
                .await
                .map_err(as_grant)?;
            // RFC 9449 §5: a refresh token is bound only for a client that cannot
            // authenticate itself; a confidential client's is held by its secret.
            let binding = Binding {
                access: jkt,
                refresh: jkt.filter(|_| registered.as_ref().is_none_or(|c| c.public)),
            };
            Ok(Granted {
                body: open_app_session(
                    state,
                    &user,
                    AppSession {
                        sid: None,
                        client_id: None,
                        scope,
                    },
                    client,
                    binding,
                )
                .await
                .map_err(as_grant)?,
                device_cookie: device_cookie(state, &user),
            })
        }
        GrantType::RefreshToken => Ok(Granted {
            body: refresh(
                state,
                &required(req.refresh_token, "refresh_token")?,
                client,
                proof.as_ref(),
                registered.as_ref(),
            )
            .await?,
            device_cookie: None,
        }),
    }
}

/// The app session a grant opens.
pub(super) struct AppSession<'a> {
    /// Its id, if chosen in advance (an authorization code's); else a fresh one.
    pub sid: Option<String>,
    /// The client that owns its refresh family; `None` for first-party apps.
    pub client_id: Option<&'a str>,
    /// The granted scope.
    pub scope: Option<String>,
}

/// A new app session — a node of the user's session tree — owning a new refresh family, and
/// an access token: what the password and authorization-code grants issue. `user` carries the
/// credential epoch under which the user was authenticated; if a reset moved it meanwhile,
/// the new session is revoked (`InvalidCredentials`).
pub(super) async fn open_app_session(
    state: &AppState,
    user: &User,
    app: AppSession<'_>,
    client: &ClientContext,
    binding: Binding<'_>,
) -> Result<TokenResponse, ApiError> {
    let AppSession {
        sid,
        client_id,
        scope,
    } = app;
    let mut session = new_session(state, user, None, SessionKind::App, client)?;
    if let Some(sid) = sid {
        session.id = sid;
    }
    session.client_id = client_id.map(str::to_owned);
    let refresh_token = OpaqueToken::generate(TokenKind::Refresh).map_err(internal)?;
    let family = RefreshFamily {
        id: random_id().map_err(internal)?,
        user_id: user.id.clone(),
        sid: session.id.clone(),
        client_id: client_id.map(str::to_owned),
        scope: scope.clone(),
        created_at: session.created_at,
        expires_at: session.expires_at,
        generation: 0,
        rotated_at: None,
        sealed_successor: None,
        revoked_at: None,
        jkt: binding.refresh.map(str::to_owned),
    };
    state.store.create_session(&session).await?;
    state
        .store
        .create_family(&family, &refresh_token.hash())
        .await?;
    let how = if client_id.is_some() {
        "authorization code"
    } else {
        "password grant"
    };
    confirm_login(state, user, &session.id, client, how).await?;
    let issued_to = client_id.unwrap_or(FIRST_PARTY_CLIENT);
    let access_token = issue_access(
        state,
        &user.id,
        Some(&user.username),
        Some(&session.id),
        scope.as_deref(),
        issued_to,
        binding.access,
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: token_type(binding.access),
        expires_in: state.config.access_ttl_secs,
        refresh_token: Some(refresh_token.expose_secret().to_owned()),
        scope,
        issued_token_type: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets never reach a `Debug` print (a log line formatting a request or a response).
    #[test]
    fn debug_of_token_requests_and_responses_is_redacted() {
        let req: TokenRequest = serde_json::from_value(serde_json::json!({
            "grant_type": "password", "username": "alice",
            "password": "plum tractor velvet ocean", "refresh_token": "trt_secretsecret",
        }))
        .unwrap();
        let granted = Granted {
            body: TokenResponse {
                access_token: "eyJ.secret.jwt".into(),
                token_type: "Bearer",
                expires_in: 600,
                refresh_token: Some("trt_secretsecret".into()),
                scope: None,
                issued_token_type: None,
            },
            device_cookie: Some("device-secret".into()),
        };
        let printed = format!("{req:?} {granted:?}");
        for secret in ["plum tractor", "trt_secret", "eyJ.secret", "device-secret"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("alice") && printed.contains("<redacted>"));
    }
}
