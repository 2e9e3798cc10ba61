//! A bounded cache of verified access tokens, so a token presented again skips the signature
//! check and the JSON decoding but none of the rules that can change after it was verified.
//!
//! Design decision: **the cache only remembers what cannot change; everything that can is
//! checked on every use.** An entry is keyed by the SHA-256 of the exact token bytes (a token
//! differing in one byte has another digest, so it is verified from scratch, and the cache
//! never holds a token itself) and keeps the claims plus the `kid` and fingerprint of the key
//! that verified them. A hit is only taken after the issuer and audience match the policy
//! asked for, `lookup(kid)` still returns a key with the same fingerprint (a revoked, retired,
//! reloaded-away or replaced key sends the token back through full verification, where it is
//! refused), and `exp`/`nbf`/`iat` pass against `now`. Revocation by `jti`, `sid` or user
//! stays the caller's check, made after this one on every request, cached or not.
//!
//! Memory is bounded by a fixed number of slots, split over shards that each hold their own
//! lock; a full shard evicts by the CLOCK rule (an entry used since the hand last passed gets
//! a second chance), so a burst of distinct valid tokens can only replace entries, never add
//! to them. Only successful verifications are cached: a refused token costs full work each
//! time, as it would without the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aws_lc_rs::digest;

use super::{AccessClaims, AccessError, AccessPolicy, check_times, verify_with};
use crate::jose::VerifyingKey;
use crate::time::UnixTime;

/// The number of verified tokens a cache holds unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// Shards: locks taken independently, so concurrent requests rarely wait on each other.
const SHARDS: usize = 16;

/// The SHA-256 of a token's bytes.
type TokenDigest = [u8; 32];

/// What a successful verification leaves behind.
#[derive(Debug)]
struct Verified {
    claims: AccessClaims,
    kid: Box<str>,
    key: [u8; 32],
}

#[derive(Debug)]
struct Slot {
    digest: TokenDigest,
    verified: Arc<Verified>,
    /// Set on every hit, cleared by the passing clock hand.
    referenced: bool,
}

#[derive(Debug, Default)]
struct Shard {
    slots: Vec<Slot>,
    index: HashMap<TokenDigest, usize>,
    hand: usize,
}

impl Shard {
    fn get(&mut self, digest: &TokenDigest) -> Option<Arc<Verified>> {
        let at = *self.index.get(digest)?;
        let slot = self.slots.get_mut(at)?;
        slot.referenced = true;
        Some(Arc::clone(&slot.verified))
    }

    fn remove(&mut self, digest: &TokenDigest) {
        let Some(at) = self.index.remove(digest) else {
            return;
        };
        if at >= self.slots.len() {
            return;
        }
        self.slots.swap_remove(at);
        if let Some(moved) = self.slots.get(at) {
            self.index.insert(moved.digest, at);
        }
        if self.hand >= self.slots.len() {
            self.hand = 0;
        }
    }

    fn insert(&mut self, digest: TokenDigest, verified: Arc<Verified>, capacity: usize) {
        if let Some(&at) = self.index.get(&digest) {
            if let Some(slot) = self.slots.get_mut(at) {
                slot.verified = verified;
                slot.referenced = true;
            }
            return;
        }
        if capacity == 0 {
            return;
        }
        let fresh = Slot {
            digest,
            verified,
            referenced: false,
        };
        if self.slots.len() < capacity {
            self.index.insert(digest, self.slots.len());
            self.slots.push(fresh);
            return;
        }
        // CLOCK: at most two sweeps, since the first clears every bit it passes.
        for _ in 0..2 * self.slots.len() {
            let at = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            let Some(slot) = self.slots.get_mut(at) else {
                break;
            };
            if slot.referenced {
                slot.referenced = false;
                continue;
            }
            let evicted = std::mem::replace(slot, fresh);
            self.index.remove(&evicted.digest);
            self.index.insert(digest, at);
            return;
        }
    }
}

/// A fixed-capacity, thread-safe cache of verified access tokens in front of
/// [`verify_with`]. See the module documentation for what a hit still
/// checks.
#[derive(Debug)]
pub struct VerifiedCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

impl Default for VerifiedCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl VerifiedCache {
    /// A cache of at most `capacity` tokens (rounded down to a multiple of the shard count
    /// when it exceeds it; 0 disables caching).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let shards = capacity.clamp(1, SHARDS);
        let per_shard = capacity / shards;
        Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard,
        }
    }

    /// The most tokens the cache holds at once.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    /// Tokens held now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).slots.len()).sum()
    }

    /// Whether the cache holds no token.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a verification of exactly `token` is held (for tests and diagnostics; holding
    /// one is no promise that the next [`VerifiedCache::verify_with`] accepts it).
    #[must_use]
    pub fn contains(&self, token: &str) -> bool {
        let digest = token_digest(token);
        self.shard(&digest)
            .is_some_and(|shard| lock(shard).index.contains_key(&digest))
    }

    /// Forgets every token.
    pub fn clear(&self) {
        for shard in &*self.shards {
            let mut shard = lock(shard);
            shard.slots.clear();
            shard.index.clear();
            shard.hand = 0;
        }
    }

    /// [`verify_with`] with a memory of earlier successes: the same
    /// answer for every token, at the cost of a digest and a lookup for one seen before.
    /// `lookup` is asked for the token's `kid` on every call, hit or miss, and may be asked
    /// twice (a hit whose key no longer matches falls back to full verification).
    ///
    /// # Errors
    /// As [`verify_with`].
    pub fn verify_with<'k>(
        &self,
        token: &str,
        lookup: impl Fn(&str) -> Option<&'k VerifyingKey>,
        policy: &AccessPolicy,
        now: UnixTime,
    ) -> Result<AccessClaims, AccessError> {
        let digest = token_digest(token);
        let Some(shard) = self.shard(&digest) else {
            return verify_with(token, lookup, policy, now);
        };
        let hit = lock(shard).get(&digest);
        if let Some(verified) = hit {
            let claims = &verified.claims;
            let same_policy = claims.iss == policy.issuer && claims.aud == policy.audience;
            let same_key = lookup(&verified.kid).is_some_and(|k| k.fingerprint() == &verified.key);
            if same_policy && same_key {
                if let Err(e) = check_times(claims, policy, now) {
                    if matches!(e, AccessError::Expired) {
                        lock(shard).remove(&digest);
                    }
                    return Err(e);
                }
                return Ok(claims.clone());
            }
            lock(shard).remove(&digest);
        }
        let used = std::cell::Cell::new(None);
        let claims = verify_with(
            token,
            |kid| {
                let key = lookup(kid);
                used.set(key.map(|k| (Box::<str>::from(kid), *k.fingerprint())));
                key
            },
            policy,
            now,
        )?;
        if let Some((kid, key)) = used.take() {
            let verified = Arc::new(Verified {
                claims: claims.clone(),
                kid,
                key,
            });
            lock(shard).insert(digest, verified, self.per_shard);
        }
        Ok(claims)
    }

    /// The shard a digest belongs to (always `Some`: the cache has at least one shard).
    fn shard(&self, digest: &TokenDigest) -> Option<&Mutex<Shard>> {
        let [a, b, ..] = *digest;
        let at = usize::from(u16::from_le_bytes([a, b])) % self.shards.len().max(1);
        self.shards.get(at)
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

fn token_digest(token: &str) -> TokenDigest {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

#[cfg(test)]
mod tests;
