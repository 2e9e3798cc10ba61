//! What `/metrics` exports: counters kept by the flows, per-route request counts and latency
//! histograms kept by the request middleware (`crate::edge`), authentication outcomes kept by the
//! [`Authenticated`](crate::auth::Authenticated) extractor, and gauges read when scraped.
//!
//! Design decision: hand-written atomics and a hand-written text exposition (format 0.0.4,
//! `exposition`) rather than a metrics crate. Every series is known when the server starts —
//! the routes come from the route table, statuses are three digits, outcomes are an enum — so
//! each one is a fixed slot found without a lock or an allocation: a request costs a map
//! lookup of its route template and four relaxed atomic additions. Nothing a client sends
//! becomes a label, so the number of series is bounded by the code.

mod exposition;
mod http;
mod request_id;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub use exposition::render;
pub(crate) use http::Observation;
pub use http::{HttpMetrics, LATENCY_BUCKETS, UNMATCHED_ROUTE};
pub use request_id::{REQUEST_ID_HEADER, RequestIds, acceptable_request_id};

/// Counters and gauges exported at `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Successful logins (cookie or password grant).
    pub logins_ok: AtomicU64,
    /// Failed logins.
    pub logins_failed: AtomicU64,
    /// Logins refused by the rate limiter.
    pub logins_throttled: AtomicU64,
    /// Password verifications run (Argon2id), real or against the dummy hash.
    pub password_checks: AtomicU64,
    /// Access tokens issued.
    pub access_tokens_issued: AtomicU64,
    /// Refresh rotations.
    pub refresh_rotations: AtomicU64,
    /// Grace-window replays of a rotated refresh token (one per rotation at most).
    pub refresh_grace_replays: AtomicU64,
    /// Refresh-token reuse detections.
    pub refresh_reuse_detected: AtomicU64,
    /// Revocations recorded by this instance.
    pub revocations_recorded: AtomicU64,
    /// Password hashes refused because the hashing queue was full.
    pub hashing_refused: AtomicU64,
    /// Registrations refused by the rate limiter.
    pub registrations_throttled: AtomicU64,
    /// Requests by route and status, and their latency.
    pub http: HttpMetrics,
    /// Authentications of the routes that need a caller, by outcome.
    pub auth: AuthOutcomes,
    /// Sessions in the store, as counted after the last sweep ([`Metrics::sessions_counted`]).
    stored_sessions: AtomicU64,
    /// When `stored_sessions` was counted (Unix seconds; 0: not yet).
    sessions_counted_at: AtomicI64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the number of sessions the store held at `at` (after a sweep).
    pub fn sessions_counted(&self, count: u64, at: tessera_core::time::UnixTime) {
        self.stored_sessions.store(count, Ordering::Relaxed);
        self.sessions_counted_at.store(at.0, Ordering::Relaxed);
    }

    /// The last session count and when it was taken, if one was.
    #[must_use]
    pub fn stored_sessions(&self) -> Option<(u64, tessera_core::time::UnixTime)> {
        let at = self.sessions_counted_at.load(Ordering::Relaxed);
        (at != 0).then(|| {
            (
                self.stored_sessions.load(Ordering::Relaxed),
                tessera_core::time::UnixTime(at),
            )
        })
    }
}

/// How an authentication by the [`Authenticated`](crate::auth::Authenticated) extractor
/// ended: the `reason` label of `tessera_authentications_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// A valid access JWT.
    OkJwt,
    /// A valid session, presented as a bearer `tss_` token.
    OkSession,
    /// A valid session, presented as the cookie.
    OkCookie,
    /// No credential at all.
    Missing,
    /// A credential that could not be read: a malformed `Authorization` header, a repeated
    /// cookie, a session token whose checksum fails.
    Malformed,
    /// A well-formed session token the store does not hold (never issued, logged out, swept).
    UnknownSession,
    /// An access token past `exp`, or a session past its idle or absolute limit.
    Expired,
    /// A revoked credential (its `jti`, `sid`, user cutoff or key).
    Revoked,
    /// An access token refused for any other reason (signature, key, issuer, audience, claims).
    Invalid,
    /// The store failed while checking: 503 (or 500), the credential may be fine.
    Unavailable,
}

impl AuthOutcome {
    /// Every outcome, in exposition order.
    pub const ALL: [Self; 10] = [
        Self::OkJwt,
        Self::OkSession,
        Self::OkCookie,
        Self::Missing,
        Self::Malformed,
        Self::UnknownSession,
        Self::Expired,
        Self::Revoked,
        Self::Invalid,
        Self::Unavailable,
    ];

    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OkJwt => "ok_jwt",
            Self::OkSession => "ok_session",
            Self::OkCookie => "ok_cookie",
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::UnknownSession => "unknown_session",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Invalid => "invalid",
            Self::Unavailable => "unavailable",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One counter per [`AuthOutcome`].
#[derive(Debug, Default)]
pub struct AuthOutcomes([AtomicU64; AuthOutcome::ALL.len()]);

impl AuthOutcomes {
    /// Counts one authentication.
    pub fn record(&self, outcome: AuthOutcome) {
        if let Some(c) = self.0.get(outcome.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many authentications ended so.
    #[must_use]
    pub fn get(&self, outcome: AuthOutcome) -> u64 {
        self.0
            .get(outcome.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}
