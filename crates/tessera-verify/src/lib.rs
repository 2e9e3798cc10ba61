//! Verify Tessera access tokens in a resource server.
//!
//! A [`Verifier`] fetches the issuer's discovery document and JWKS once, then follows
//! Tessera's revocation stream in the background; [`Verifier::verify`] checks a token with
//! no network call: the signature against the cached keys and every claim rule through
//! `tessera_core::access` (the same code the issuer runs), then the in-memory revocation list
//! (`jti`, `sid`, the user's `iat` cutoff, the signing key's `kid`). [`VerifiedToken`] is the
//! axum extractor built on it; it accepts `Authorization: Bearer` and, for tokens bound to a
//! key, `Authorization: DPoP` with a proof ([`Verifier::verify_presentation`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Json, Router, routing::get};
//! use tessera_verify::{Verifier, VerifiedToken};
//!
//! let verifier = Verifier::builder("https://auth.example")
//!     .audience("https://api.example")
//!     .client("api-server", "its-secret")
//!     .start()
//!     .await?;
//! let app: Router = Router::new()
//!     .route("/whoami", get(|VerifiedToken(claims): VerifiedToken| async move { Json(claims.sub) }))
//!     .layer(verifier.layer());
//! # let _ = app; Ok(()) }
//! ```
//!
//! The one design decision: **revocations fail closed.** The revocation list is only trusted
//! while it is known to be complete — the last successful catch-up, event or heartbeat is at
//! most [`Builder::max_staleness`] old (default [`DEFAULT_MAX_STALENESS`], 30 s; Tessera sends
//! a heartbeat every 2 s, and the contract promises one at least every 15 s). Past that, every otherwise valid token is refused
//! with [`VerifyError::Stale`] (a 503 from the extractor) until the stream is back, so a
//! revoked token is accepted at most `max_staleness` after its revocation was announced.

#![forbid(unsafe_code)]

mod dpop;
mod extract;
mod follow;
mod remote;
mod sse;

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tessera_core::access::cache::VerifiedCache;
use tessera_core::access::{AccessClaims, AccessError, AccessPolicy};
use tessera_core::jose::JoseError;
use tessera_core::keys::PublicKeySet;
use tessera_core::revocation::{RevocationList, RevocationSubject};
use tessera_core::time::{Clock as _, SystemClock};
use tokio::sync::Notify;

pub use dpop::{DEFAULT_REPLAY_CAPACITY, Presentation};
pub use extract::{Scheme, TokenRejection, VerifiedToken};
use tessera_core::dpop::DpopError;

/// How old the last sign of a complete revocation state may be before [`Verifier::verify`]
/// fails closed.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(30);
/// How many verified tokens a [`Verifier`] remembers unless told otherwise
/// ([`Builder::cache_capacity`]).
pub const DEFAULT_CACHE_CAPACITY: usize = tessera_core::access::cache::DEFAULT_CAPACITY;
/// The least time between two JWKS fetches caused by tokens naming an unknown `kid`.
pub const DEFAULT_JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// How often the JWKS is fetched anyway, to learn keys before they sign and forget retired
/// ones (Tessera publishes a key at least this long before it signs with it).
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(300);

/// Why the verifier could not start (or a background fetch failed, as logged).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The builder was given something unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The request failed (connection, timeout, body).
    #[error("{what}: {detail}")]
    Http {
        /// Which fetch.
        what: &'static str,
        /// The client's description.
        detail: String,
    },
    /// The server answered with another status than 200.
    #[error("{what}: HTTP status {status}")]
    Status {
        /// Which fetch.
        what: &'static str,
        /// The status code.
        status: u16,
    },
    /// The answer was not what the contract says.
    #[error("{what}: {detail}")]
    Protocol {
        /// Which fetch.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The JWKS was refused as a whole (see `PublicKeySet::from_jwks`).
    #[error("JWKS refused: {0}")]
    Jwks(JoseError),
}

impl Error {
    fn http(what: &'static str, e: &reqwest::Error) -> Self {
        Self::Http {
            what,
            detail: e.to_string(),
        }
    }
}

/// Why [`Verifier::verify`] refused a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is not a valid access token for this audience (signature, key, type,
    /// claims, time); an unknown `kid` also asks for a JWKS refetch.
    #[error("invalid token: {0}")]
    Invalid(#[from] AccessError),
    /// The token, its session, its user's earlier tokens or its signing key were revoked.
    #[error("token revoked")]
    Revoked,
    /// The revocation state is older than `max_staleness`: the verifier fails closed.
    #[error("revocation state is stale; failing closed")]
    Stale,
    /// A DPoP-bound token presented as `Bearer`, or an unbound one as `DPoP` (RFC 9449 §7).
    #[error("token presented with the wrong scheme")]
    WrongScheme,
    /// A DPoP-bound token came without a `DPoP` proof.
    #[error("DPoP proof missing")]
    MissingProof,
    /// The DPoP proof was refused.
    #[error("DPoP proof refused: {0}")]
    Proof(#[from] DpopError),
    /// The DPoP proof was seen before (or the replay cache is full of live proofs).
    #[error("DPoP proof replayed")]
    Replayed,
    /// A DPoP-bound token, but no public URL is known to check the proof's `htu` against.
    #[error("no public URL configured for DPoP")]
    NoPublicUrl,
}

/// Configures and starts a [`Verifier`].
pub struct Builder {
    issuer: String,
    server: Option<String>,
    audience: Option<String>,
    client: Option<(String, String)>,
    max_staleness: Duration,
    leeway_secs: i64,
    jwks_refetch_interval: Duration,
    jwks_refresh: Duration,
    cache_capacity: usize,
    public_url: Option<String>,
    replay_capacity: usize,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("issuer", &self.issuer)
            .field("server", &self.server)
            .field("audience", &self.audience)
            .field("client_id", &self.client.as_ref().map(|(id, _)| id))
            .field("max_staleness", &self.max_staleness)
            .field("leeway_secs", &self.leeway_secs)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Where discovery, the JWKS and the revocation endpoints are fetched, as an origin
    /// (`http(s)://host[:port]`): it replaces the issuer's origin in every URL fetched,
    /// discovery's `jwks_uri` included. Default: the issuer's origin. Tokens' `iss` must still
    /// be the issuer.
    #[must_use]
    pub fn server(mut self, url: impl Into<String>) -> Self {
        self.server = Some(url.into());
        self
    }

    /// The audience this resource server is (required): tokens must name it in `aud`.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The client credentials the revocation endpoints require (HTTP Basic, RFC 6749
    /// §2.3.1).
    #[must_use]
    pub fn client(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client = Some((id.into(), secret.into()));
        self
    }

    /// The staleness bound (default [`DEFAULT_MAX_STALENESS`]); keep it above the server's
    /// heartbeat interval (Tessera: 2 s; at most 15 s by the contract), with margin — 3 s or
    /// more against Tessera. It is also how long the stream may stay silent before it is
    /// reopened.
    #[must_use]
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound;
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat`, in seconds (default 30; core caps it at 60).
    #[must_use]
    pub fn leeway(mut self, secs: i64) -> Self {
        self.leeway_secs = secs;
        self
    }

    /// The least time between JWKS fetches caused by unknown `kid`s (default
    /// [`DEFAULT_JWKS_REFETCH_INTERVAL`]).
    #[must_use]
    pub fn jwks_refetch_interval(mut self, interval: Duration) -> Self {
        self.jwks_refetch_interval = interval;
        self
    }

    /// How often the JWKS is fetched regardless (default [`DEFAULT_JWKS_REFRESH`]).
    #[must_use]
    pub fn jwks_refresh(mut self, period: Duration) -> Self {
        self.jwks_refresh = period;
        self
    }

    /// How many verified tokens are remembered for their next use (default
    /// [`DEFAULT_CACHE_CAPACITY`], 10,000; 0 turns the cache off). A remembered token skips the
    /// signature check and decoding, never the time rules, the key check or the revocation
    /// list (see `tessera_core::access::cache`).
    #[must_use]
    pub fn cache_capacity(mut self, tokens: usize) -> Self {
        self.cache_capacity = tokens;
        self
    }

    /// This resource server's public base URL (`https://api.example`), what clients sign as
    /// the `htu` of their DPoP proofs, followed by the request path. Default: the audience,
    /// when it is an http(s) URL; without either, DPoP-bound tokens are refused.
    #[must_use]
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// How many DPoP proofs the in-process replay cache remembers (default
    /// [`DEFAULT_REPLAY_CAPACITY`]); when it is full of proofs still young enough to be
    /// accepted, new proofs are refused. See [`dpop`](crate::Presentation) for why the cache is
    /// local.
    #[must_use]
    pub fn replay_capacity(mut self, proofs: usize) -> Self {
        self.replay_capacity = proofs;
        self
    }
    /// Fetches discovery and the JWKS, catches up with the revocation list, and starts the
    /// background tasks (the revocation stream, JWKS refreshes). Must run inside a Tokio
    /// runtime; the tasks end when the last clone of the [`Verifier`] is dropped.
    ///
    /// # Errors
    /// [`Error::Config`] for a missing audience or client, or unusable URLs; the fetch errors
    /// if discovery, the JWKS or the first catch-up fails.
    pub async fn start(self) -> Result<Verifier, Error> {
        let audience = self
            .audience
            .ok_or_else(|| Error::Config("an audience is required".into()))?;
        let (client_id, client_secret) = self
            .client
            .ok_or_else(|| Error::Config("client credentials are required".into()))?;
        let (issuer, issuer_url) = remote::Issuer::new(&self.issuer)?;
        let origin = match &self.server {
            Some(server) => remote::origin(server)?,
            None => remote::origin(&issuer_url.origin().ascii_serialization())?,
        };
        let http = remote::Remote::client()?;
        let discovery = issuer.at("/.well-known/openid-configuration", &origin)?;
        let jwks_uri = remote::Remote::discover(&http, discovery, &self.issuer).await?;
        let endpoints = remote::Endpoints {
            jwks: remote::Endpoints::rewrite(&jwks_uri, &origin),
            revocations: issuer.at("/v1/revocations", &origin)?,
            stream: issuer.at("/v1/revocations/stream", &origin)?,
        };
        let remote = remote::Remote::new(http, &client_id, &client_secret, endpoints);
        let keys = remote.jwks().await?;
        let public_url = match self.public_url {
            Some(url) => Some(
                tessera_core::dpop::normalize_htu(&url)
                    .map(|_| url.trim_end_matches('/').to_owned())
                    .map_err(|_| Error::Config(format!("public URL {url:?} is not http(s)")))?,
            ),
            None => tessera_core::dpop::normalize_htu(&audience)
                .ok()
                .map(|_| audience.trim_end_matches('/').to_owned()),
        };
        let shared = Arc::new(Shared {
            public_url,
            replays: dpop::ReplayCache::new(self.replay_capacity),
            policy: AccessPolicy {
                issuer: self.issuer,
                audience,
                leeway_secs: self.leeway_secs,
            },
            keys: RwLock::new(Arc::new(keys)),
            revocations: RwLock::new(RevocationList::new()),
            cache: VerifiedCache::new(self.cache_capacity),
            epoch: Instant::now(),
            fresh_at: AtomicU64::new(0),
            max_staleness: self.max_staleness,
            jwks_refetch_interval: self.jwks_refetch_interval,
            jwks_refresh: self.jwks_refresh,
            last_jwks_request: Mutex::new(None),
            jwks_wanted: Notify::new(),
            remote,
        });
        let cursor = shared.catch_up(None).await?;
        let tasks = vec![
            tokio::spawn(follow::revocations(Arc::clone(&shared), cursor)).abort_handle(),
            tokio::spawn(follow::keys(Arc::clone(&shared))).abort_handle(),
        ];
        Ok(Verifier {
            inner: Arc::new(Handle { shared, tasks }),
        })
    }
}

/// Verifies access tokens for one audience. Cheap to clone (an `Arc`): clones share the keys,
/// the revocation list and the background tasks, which stop when the last clone is dropped.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Handle>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("policy", &self.inner.shared.policy)
            .field("remote", &self.inner.shared.remote)
            .finish_non_exhaustive()
    }
}

struct Handle {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What the background tasks and `verify` share.
pub(crate) struct Shared {
    policy: AccessPolicy,
    /// Base of the `htu` DPoP proofs must name.
    public_url: Option<String>,
    replays: dpop::ReplayCache,
    keys: RwLock<Arc<PublicKeySet>>,
    revocations: RwLock<RevocationList>,
    /// Tokens verified before; a hit still checks time and key, and the list after it.
    cache: VerifiedCache,
    /// The origin of `fresh_at`.
    epoch: Instant,
    /// Milliseconds after `epoch`, plus one, of the last moment the revocation list was known
    /// complete; 0 for never.
    fresh_at: AtomicU64,
    max_staleness: Duration,
    jwks_refetch_interval: Duration,
    jwks_refresh: Duration,
    last_jwks_request: Mutex<Option<Instant>>,
    jwks_wanted: Notify,
    remote: remote::Remote,
}

impl Shared {
    /// Records that the revocation list is complete as of now.
    fn mark_fresh(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.fresh_at.store(ms + 1, Ordering::Release);
    }

    /// How long ago the list was last known complete (`None`: never).
    fn staleness(&self) -> Option<Duration> {
        let at = self.fresh_at.load(Ordering::Acquire).checked_sub(1)?;
        Some(
            self.epoch
                .elapsed()
                .saturating_sub(Duration::from_millis(at)),
        )
    }

    fn is_fresh(&self) -> bool {
        self.staleness()
            .is_some_and(|age| age <= self.max_staleness)
    }

    /// Asks the key task for a JWKS fetch, at most once per `jwks_refetch_interval`.
    fn want_keys(&self) {
        let now = Instant::now();
        let mut last = self
            .last_jwks_request
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|t| now.duration_since(t) >= self.jwks_refetch_interval) {
            *last = Some(now);
            self.jwks_wanted.notify_one();
        }
    }

    fn apply<'a>(
        &self,
        revocations: impl IntoIterator<Item = &'a tessera_core::revocation::Revocation>,
    ) {
        let mut list = self
            .revocations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for r in revocations {
            list.insert(r);
        }
    }

    fn prune(&self) {
        self.revocations
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .prune(SystemClock.now());
    }

    /// `GET /v1/revocations[?since]`, merged into the list (revocations are never undone, so
    /// merging a whole list or a delta is the same); returns the new cursor.
    async fn catch_up(&self, since: Option<&str>) -> Result<String, Error> {
        let caught_up = self.remote.catch_up(since).await?;
        self.apply(&caught_up.revocations);
        self.prune();
        self.mark_fresh();
        Ok(caught_up.cursor)
    }
}

impl Verifier {
    /// Starts configuring a verifier for tokens issued by `issuer` (exactly the tokens' `iss`).
    #[must_use]
    pub fn builder(issuer: impl Into<String>) -> Builder {
        Builder {
            issuer: issuer.into(),
            server: None,
            audience: None,
            client: None,
            max_staleness: DEFAULT_MAX_STALENESS,
            leeway_secs: 30,
            jwks_refetch_interval: DEFAULT_JWKS_REFETCH_INTERVAL,
            jwks_refresh: DEFAULT_JWKS_REFRESH,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            public_url: None,
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
        }
    }

    /// Verifies an access token without any network call. A token verified before is
    /// recognised by the SHA-256 of its bytes and skips the signature check and decoding; its
    /// expiry, its key (revoked, or no longer in the JWKS) and the revocation list are
    /// checked on every call all the same.
    ///
    /// Order: signature and claims (a token naming an unknown `kid` is refused at once and
    /// asks for a JWKS refetch, at most one per refetch interval — the request does not wait
    /// for it, a retry after it succeeds), then freshness of the revocation state, then the
    /// revocation list.
    ///
    /// # Errors
    /// [`VerifyError::Invalid`] with the reason, [`VerifyError::Revoked`], or
    /// [`VerifyError::Stale`] while the revocation state is older than `max_staleness`.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let shared = &self.inner.shared;
        let keys = Arc::clone(&shared.keys.read().unwrap_or_else(PoisonError::into_inner));
        let unknown = Cell::new(false);
        let key_revoked = Cell::new(false);
        // One read of the list for the whole check: the `kid` revocation seen while looking
        // the key up and the entries checked after the claims are the same state.
        let list = shared
            .revocations
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let lookup = |kid: &str| {
            if list.is_key_revoked(kid) {
                key_revoked.set(true);
                return None;
            }
            let key = keys.get(kid);
            unknown.set(key.is_none());
            key
        };
        let verified = shared
            .cache
            .verify_with(token, lookup, &shared.policy, SystemClock.now());
        let claims = match verified {
            Ok(claims) => claims,
            Err(_) if key_revoked.get() => return Err(VerifyError::Revoked),
            Err(e) => {
                if unknown.get() {
                    shared.want_keys();
                }
                return Err(e.into());
            }
        };
        if !shared.is_fresh() {
            return Err(VerifyError::Stale);
        }
        let subject = RevocationSubject {
            jti: &claims.jti,
            sid: claims.sid.as_deref(),
            sub: &claims.sub,
            client_id: Some(&claims.client_id),
            iat: claims.iat,
        };
        if list.is_revoked(subject) {
            return Err(VerifyError::Revoked);
        }
        Ok(claims)
    }

    /// [`Verifier::verify`], then the DPoP rules (RFC 9449 §7): a token bound to a key
    /// (`cnf.jkt`) must come as `DPoP` with a proof by that key for this request (`htm`,
    /// `htu` at the public URL, `ath`, `iat` within 60 s, a `jti` this process has not seen);
    /// an unbound token must come as `Bearer`.
    ///
    /// # Errors
    /// As [`Verifier::verify`], then [`VerifyError::WrongScheme`],
    /// [`VerifyError::MissingProof`], [`VerifyError::Proof`], [`VerifyError::Replayed`] or
    /// [`VerifyError::NoPublicUrl`].
    pub fn verify_presentation(
        &self,
        presented: &Presentation<'_>,
    ) -> Result<AccessClaims, VerifyError> {
        let claims = self.verify(presented.token)?;
        let shared = &self.inner.shared;
        dpop::check(
            &claims,
            presented,
            shared.public_url.as_deref(),
            &shared.replays,
            SystemClock.now(),
        )?;
        Ok(claims)
    }

    /// How long ago the revocation state was last known complete (`None`: never).
    #[must_use]
    pub fn staleness(&self) -> Option<Duration> {
        self.inner.shared.staleness()
    }

    /// Whether [`Verifier::verify`] currently trusts the revocation list (not failing closed).
    #[must_use]
    pub fn is_fresh(&self) -> bool {
        self.inner.shared.is_fresh()
    }

    /// The `kid`s of the keys currently trusted.
    #[must_use]
    pub fn kids(&self) -> Vec<String> {
        let keys = self
            .inner
            .shared
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        keys.kids().map(str::to_owned).collect()
    }

    /// How many verified tokens the cache holds now (at most the builder's
    /// [`Builder::cache_capacity`]).
    #[must_use]
    pub fn cached_tokens(&self) -> usize {
        self.inner.shared.cache.len()
    }

    /// The policy tokens are checked against.
    #[must_use]
    pub fn policy(&self) -> &AccessPolicy {
        &self.inner.shared.policy
    }

    /// A layer that puts this verifier into every request's extensions, where
    /// [`VerifiedToken`] finds it: `Router::new().route(…).layer(verifier.layer())`.
    pub fn layer(&self) -> axum::Extension<Self> {
        axum::Extension(self.clone())
    }
}
