//! Server settings, with secure defaults: everything here works unconfigured.

use tessera_core::keys::kek::Kek;
use tessera_core::keys::lifecycle::{self, Schedule};
use tessera_core::session::SessionPolicy;

use crate::cors::CorsOrigin;
use crate::net::IpNet;

/// How the server issues and checks credentials.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Public base URL: the `iss` claim, and the base of every link in discovery.
    pub issuer: String,
    /// The `aud` of access tokens this server issues and accepts (default: the issuer).
    pub audience: String,
    /// Further audiences token exchange may issue tokens for (`--audience`, repeatable);
    /// [`ServerConfig::audience`] always counts.
    pub exchange_audiences: Vec<String>,
    /// Lifetime of access JWTs (default 10 minutes).
    pub access_ttl_secs: i64,
    /// Clock leeway when checking `exp`/`nbf`/`iat` (default 30 s, at most 60).
    pub leeway_secs: i64,
    /// Grace window for retrying a rotated refresh token (default 10 s; 0 disables).
    pub refresh_grace_secs: i64,
    /// Session timeouts.
    pub sessions: SessionPolicy,
    /// Origins besides the request's own that may make cookie-authenticated writes.
    pub trusted_origins: Vec<String>,
    /// Origins of pages on other sites that may call the API from a browser (CORS,
    /// `--cors-origin`); default none. See [`crate::cors`].
    pub cors_origins: Vec<CorsOrigin>,
    /// Login attempts allowed per client IP within [`ServerConfig::login_window_secs`].
    pub login_limit_per_ip: u32,
    /// Failed logins allowed per account within the window.
    pub login_limit_per_account: u32,
    /// The rate-limit window, in seconds.
    pub login_window_secs: i64,
    /// Registrations allowed per client IP (IPv6: per /64) within the window; `409 taken`
    /// answers count too, so the endpoint is no faster a username oracle than login.
    pub register_limit_per_ip: u32,
    /// Access tokens one user may revoke one by one within the window; past it, revocations
    /// coalesce into a per-user cutoff, so no account can inflate every instance's list. Also
    /// the session revocations kept for the session's whole life, counted over that life.
    pub revocations_per_user: u32,
    /// Password hashes (Argon2id) that may wait or run at once before new ones are refused
    /// with 503 and `Retry-After`; logins from a known device may use twice as many, and one
    /// source address half as many.
    pub hashing_queue: usize,
    /// Proxies whose forwarding headers (`Forwarded`, else `X-Forwarded-For`) are believed
    /// when they are the socket's peer (default: none, so those headers are ignored). The
    /// rule is [`crate::extract::client_ip`].
    pub trusted_proxies: Vec<IpNet>,
    /// The key-encryption key that seals signing keys in the store (see
    /// [`tessera_core::keys::kek`]). `None` (the default) makes an ephemeral one at startup,
    /// which only suits a store that does not outlive the process (`memory:`): any store
    /// that persists keys must be given the same KEK on every start and every instance.
    /// After startup, [`crate::AppState::config`] holds the KEK in use.
    pub kek: Option<Kek>,
    /// How long a signing key signs before the server rotates to the next one by itself
    /// (default 30 days); see [`ServerConfig::key_schedule`].
    pub key_rotation_secs: i64,
    /// Verified access tokens remembered for their next use (default
    /// [`tessera_core::access::cache::DEFAULT_CAPACITY`]; 0 turns the cache off). Every use,
    /// cached or not, still checks expiry, the signing key and the revocation list; see
    /// [`tessera_core::access::cache`].
    pub access_cache_capacity: usize,
    /// How long audit events are kept before the maintenance sweep deletes them (default
    /// [`DEFAULT_AUDIT_RETENTION_SECS`], 90 days).
    pub audit_retention_secs: i64,
}

/// The default of [`ServerConfig::audit_retention_secs`]: 90 days.
pub const DEFAULT_AUDIT_RETENTION_SECS: i64 = 90 * 24 * 3600;

impl ServerConfig {
    /// Defaults for a server reachable at `issuer`.
    #[must_use]
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into().trim_end_matches('/').to_owned();
        Self {
            audience: issuer.clone(),
            exchange_audiences: Vec::new(),
            issuer,
            access_ttl_secs: 600,
            leeway_secs: 30,
            refresh_grace_secs: tessera_core::refresh::DEFAULT_GRACE_SECS,
            sessions: SessionPolicy::default(),
            trusted_origins: Vec::new(),
            cors_origins: Vec::new(),
            login_limit_per_ip: 30,
            login_limit_per_account: 10,
            login_window_secs: 300,
            register_limit_per_ip: 20,
            hashing_queue: 16,
            revocations_per_user: 100,
            trusted_proxies: Vec::new(),
            kek: None,
            key_rotation_secs: lifecycle::DEFAULT_ROTATION_SECS,
            access_cache_capacity: tessera_core::access::cache::DEFAULT_CAPACITY,
            audit_retention_secs: DEFAULT_AUDIT_RETENTION_SECS,
        }
    }

    /// The automatic key rotation schedule: rotate every [`ServerConfig::key_rotation_secs`];
    /// retire a demoted key once the longest-lived token it signed has expired
    /// ([`ServerConfig::access_horizon_secs`]).
    #[must_use]
    pub fn key_schedule(&self) -> Schedule {
        Schedule {
            rotation_secs: self.key_rotation_secs,
            token_lifetime_secs: self.access_horizon_secs(),
        }
    }

    /// Whether token exchange may issue a token for `aud`.
    #[must_use]
    pub fn accepts_audience(&self, aud: &str) -> bool {
        aud == self.audience || self.exchange_audiences.iter().any(|a| a == aud)
    }

    /// How long a revocation of a session or user must be kept: until every access token it
    /// could match has expired.
    #[must_use]
    pub fn access_horizon_secs(&self) -> i64 {
        self.access_ttl_secs.saturating_add(self.leeway_secs)
    }
}
