//! DPoP (RFC 9449) in a resource server: a token bound to a key (`cnf.jkt`) is only accepted
//! as `Authorization: DPoP <token>` with a fresh proof by that key for the very request.
//!
//! Design decision: **the replay cache is this process's own.** A resource server has no
//! shared store, so a proof's `jti` is remembered in a bounded map for as long as the proof
//! could pass the `iat` check ([`tessera_core::dpop::MAX_PROOF_AGE_SECS`]). Several replicas
//! behind one load balancer each keep their own: a proof captured in flight could be replayed
//! once at each other replica within that minute, for the same method and URL only (`htm`,
//! `htu` and `ath` are signed). When the map is full of live entries, new proofs are refused
//! (failing closed) rather than letting the map grow. `htu` is compared with the configured
//! public URL of the resource server ([`crate::Builder::public_url`], default: the audience
//! when it is an http(s) URL), never with the `Host` a request claims.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tessera_core::access::AccessClaims;
use tessera_core::dpop::{self, ProofRequest};
use tessera_core::time::UnixTime;

use crate::VerifyError;
use crate::extract::Scheme;

/// How many proofs the replay cache remembers unless told otherwise
/// ([`crate::Builder::replay_capacity`]): a minute of 1,600 DPoP requests a second.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// What a request presented with its access token.
#[derive(Clone, Copy, Debug)]
pub struct Presentation<'a> {
    /// The `Authorization` scheme.
    pub scheme: Scheme,
    /// The access token.
    pub token: &'a str,
    /// The `DPoP` header, if one was sent.
    pub proof: Option<&'a str>,
    /// The request's method.
    pub method: &'a str,
    /// The request's path (query and fragment are not part of `htu`).
    pub path: &'a str,
}

/// Proof `jti`s seen, bounded.
pub(crate) struct ReplayCache {
    seen: Mutex<HashMap<String, UnixTime>>,
    capacity: usize,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// `true` the first time `key` is presented while its record lives.
    fn remember_once(&self, key: String, expires_at: UnixTime, now: UnixTime) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.get(&key).is_some_and(|until| *until > now) {
            return false;
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, until| *until > now);
            if seen.len() >= self.capacity {
                tracing::warn!("DPoP replay cache full of live proofs; refusing new ones");
                return false;
            }
        }
        seen.insert(key, expires_at);
        true
    }
}

/// The DPoP rules for a token whose signature and claims already verified: a bound token
/// needs the `DPoP` scheme and a valid, unseen proof by its key for this request; an unbound
/// one must come as `Bearer`.
pub(crate) fn check(
    claims: &AccessClaims,
    presented: &Presentation<'_>,
    public_url: Option<&str>,
    replays: &ReplayCache,
    now: UnixTime,
) -> Result<(), VerifyError> {
    let jkt = match (presented.scheme, claims.cnf.as_ref()) {
        (Scheme::Bearer, None) => return Ok(()),
        (Scheme::DPoP, Some(cnf)) => &cnf.jkt,
        (Scheme::Bearer, Some(_)) | (Scheme::DPoP, None) => return Err(VerifyError::WrongScheme),
    };
    let base = public_url.ok_or(VerifyError::NoPublicUrl)?;
    let proof = presented.proof.ok_or(VerifyError::MissingProof)?;
    let url = format!("{}{}", base.trim_end_matches('/'), presented.path);
    let request = ProofRequest {
        method: presented.method,
        url: &url,
        access_token: Some(presented.token),
    };
    let verified = dpop::verify_proof(proof, &request, now)?;
    verified.check_bound_to(jkt)?;
    let (key, expires_at) = verified.replay_key();
    if replays.remember_once(key, expires_at, now) {
        Ok(())
    } else {
        Err(VerifyError::Replayed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = UnixTime(1_700_000_000);

    #[test]
    fn the_replay_cache_remembers_once_and_stays_bounded() {
        let cache = ReplayCache::new(2);
        assert!(cache.remember_once("a".into(), NOW.plus(60), NOW));
        assert!(!cache.remember_once("a".into(), NOW.plus(60), NOW));
        assert!(cache.remember_once("b".into(), NOW.plus(10), NOW));
        // Full of live entries: a new proof is refused, never added.
        assert!(!cache.remember_once("c".into(), NOW.plus(60), NOW));
        // Once `b` expired, its room is reused.
        assert!(cache.remember_once("c".into(), NOW.plus(60), NOW.plus(11)));
        assert!(!cache.remember_once("a".into(), NOW.plus(60), NOW.plus(11)));
    }
}
