//! Refresh-token families: rotation on every use, a grace window for retries, and reuse
//! detection.
//!
//! A family is the chain of refresh tokens descended from one app login. Each use of the current
//! token (generation `g`) mints generation `g + 1` and retires `g`. Presenting `g` again within
//! the grace window — once, and only while `g + 1` has not been used — returns the *same*
//! successor, so a client that lost the response recovers. The successor is kept sealed
//! (AES-256-GCM) under a key only the holder of `g` can derive, so the store holds no usable
//! token. Any other presentation of a retired token — a second replay, a replay after the
//! successor was used, or one after the window — is reuse, a sign the chain was stolen, and
//! revokes the family together with its session.
//!
//! The sealed successor is the replay's whole state: the replay takes it out of the family
//! (so a second replay finds none and is reuse), a rotation replaces it, and stores clear it
//! once the window has passed ([`keeps_sealed_successor`]). A database dump plus a leaked
//! previous-generation token therefore never yields the current token once the one replay it
//! was kept for is spent or expired.
//!
//! [`decide`] is the whole rule and [`transition`] the state change it makes, as pure
//! functions; stores persist the transition inside their own atomic
//! read-modify-write so racing instances see one winner.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::SecureRandom;
use zeroize::Zeroizing;

use crate::opaque::{OpaqueToken, TokenKind};
use crate::time::UnixTime;

/// Default grace window for retrying a just-rotated refresh token, in seconds.
pub const DEFAULT_GRACE_SECS: i64 = 10;

const SEAL_PURPOSE: &str = "tessera refresh successor v1";

/// A refresh-token family as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshFamily {
    /// Public identifier.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// The login session this family belongs to (the `sid` of its access tokens).
    pub sid: String,
    /// The OAuth2 client it was issued to; `None` for first-party apps.
    pub client_id: Option<String>,
    /// Granted scope.
    pub scope: Option<String>,
    /// Creation time.
    pub created_at: UnixTime,
    /// Absolute end of the family (that of its session).
    pub expires_at: UnixTime,
    /// Generation of the one current token.
    pub generation: u32,
    /// When generation `generation - 1` was rotated away, if it was.
    pub rotated_at: Option<UnixTime>,
    /// The current token sealed under a key derived from the previous token, for the one grace
    /// retry; `None` once that retry is spent, its window has passed, or before any rotation.
    pub sealed_successor: Option<Vec<u8>>,
    /// Set once the family is revoked (reuse, logout, password change).
    pub revoked_at: Option<UnixTime>,
    /// The RFC 7638 thumbprint of the DPoP key the family is bound to: every refresh must
    /// carry a proof by that key. `None` for an unbound family.
    pub jkt: Option<String>,
}

/// What presenting a refresh token of a family at generation `presented` means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The current token: rotate to a new generation.
    Rotate,
    /// The previous token within the grace window, replayed for the first time since the
    /// rotation: hand out the same successor again.
    GraceRetry,
    /// Any other retired token (older, replayed before, or outside the grace window): the chain
    /// leaked; revoke the family.
    Reuse,
    /// The family is already revoked.
    Revoked,
    /// The family is past its absolute lifetime.
    Expired,
}

/// The rotation rule. `grace_secs <= 0` disables the grace window.
#[must_use]
pub fn decide(family: &RefreshFamily, presented: u32, now: UnixTime, grace_secs: i64) -> Decision {
    if family.revoked_at.is_some() {
        return Decision::Revoked;
    }
    if now >= family.expires_at {
        return Decision::Expired;
    }
    if presented == family.generation {
        return Decision::Rotate;
    }
    // The successor was used if the family moved on past it: then `presented` is not the
    // previous generation. A replay already served took the sealed successor out.
    let is_previous = presented.checked_add(1) == Some(family.generation);
    if is_previous && in_grace(family, now, grace_secs) && family.sealed_successor.is_some() {
        Decision::GraceRetry
    } else {
        Decision::Reuse
    }
}

/// Whether the last rotation's grace window is still open at `now`.
fn in_grace(family: &RefreshFamily, now: UnixTime, grace_secs: i64) -> bool {
    family
        .rotated_at
        .is_some_and(|at| grace_secs > 0 && now.since(at) < grace_secs)
}

/// Whether a store must keep `family`'s sealed successor at `now`: only while a grace retry
/// could still use it (the family live, the window open). Periodic sweeps clear it otherwise.
/// Stores that sweep in SQL spell the same rule as `revoked_at IS NULL AND rotated_at >
/// now - grace_secs` (nothing is kept when `grace_secs <= 0`).
#[must_use]
pub fn keeps_sealed_successor(family: &RefreshFamily, now: UnixTime, grace_secs: i64) -> bool {
    family.revoked_at.is_none() && in_grace(family, now, grace_secs)
}

/// The state change a presented refresh token causes: [`decide`] applied to the family. Stores
/// persist exactly this, inside their own atomic read-modify-write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Store the family as given (one generation on, the offered successor sealed in it) and
    /// the successor's hash at its new generation.
    Rotate(RefreshFamily),
    /// Store the family as given — its sealed successor taken out, so this replay is the
    /// only one — and hand out the successor sealed at the last rotation.
    Replay {
        /// The family after the replay: as it was, without its sealed successor.
        family: RefreshFamily,
        /// The sealed successor.
        sealed: Vec<u8>,
    },
    /// Store the family as given: revoked, its sealed successor dropped.
    Revoke(RefreshFamily),
    /// Change nothing; refuse.
    Refuse,
}

/// What presenting generation `presented` of `family` at `now` does, `sealed` being the
/// successor the caller offers (see [`seal_successor`]).
#[must_use]
pub fn transition(
    mut family: RefreshFamily,
    presented: u32,
    now: UnixTime,
    grace_secs: i64,
    sealed: &[u8],
) -> Transition {
    match decide(&family, presented, now, grace_secs) {
        Decision::Rotate => match family.generation.checked_add(1) {
            Some(next) => {
                family.generation = next;
                family.rotated_at = Some(now);
                family.sealed_successor = Some(sealed.to_vec());
                Transition::Rotate(family)
            }
            None => Transition::Refuse,
        },
        Decision::GraceRetry => match family.sealed_successor.take() {
            Some(sealed) => Transition::Replay { family, sealed },
            None => Transition::Refuse,
        },
        Decision::Reuse => {
            family.revoked_at = Some(now);
            // No replay can use it any more.
            family.sealed_successor = None;
            Transition::Revoke(family)
        }
        Decision::Revoked | Decision::Expired => Transition::Refuse,
    }
}

/// Why a sealed successor could not be opened.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Encryption or the random generator failed.
    #[error("sealing failed")]
    Seal,
    /// The sealed value is not for this token and family.
    #[error("sealed successor does not open")]
    Open,
}

fn seal_key(previous: &OpaqueToken) -> Result<LessSafeKey, SealError> {
    let key = previous.derive(SEAL_PURPOSE);
    UnboundKey::new(&AES_256_GCM, key.as_ref())
        .map(LessSafeKey::new)
        .map_err(|_| SealError::Seal)
}

/// Seals `successor` so that only the holder of `previous` can open it (nonce ‖ ciphertext ‖ tag).
/// The key is derived from `previous` alone, so sealing needs no store lookup first.
///
/// # Errors
/// [`SealError::Seal`] if the random generator or the cipher fails.
pub fn seal_successor(
    previous: &OpaqueToken,
    successor: &OpaqueToken,
) -> Result<Vec<u8>, SealError> {
    let key = seal_key(previous)?;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| SealError::Seal)?;
    let mut buf = successor.expose_secret().as_bytes().to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(SEAL_PURPOSE.as_bytes()),
        &mut buf,
    )
    .map_err(|_| SealError::Seal)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Opens what [`seal_successor`] sealed.
///
/// # Errors
/// [`SealError::Open`] if `previous` is not the token it was sealed under, or the bytes were
/// altered.
pub fn open_successor(previous: &OpaqueToken, sealed: &[u8]) -> Result<OpaqueToken, SealError> {
    let key = seal_key(previous)?;
    if sealed.len() < NONCE_LEN {
        return Err(SealError::Open);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let plain = key
        .open_in_place(nonce, Aad::from(SEAL_PURPOSE.as_bytes()), &mut buf)
        .map_err(|_| SealError::Open)?;
    let text = std::str::from_utf8(plain).map_err(|_| SealError::Open)?;
    OpaqueToken::parse(TokenKind::Refresh, text).map_err(|_| SealError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(generation: u32, rotated_at: Option<i64>) -> RefreshFamily {
        RefreshFamily {
            id: "f".into(),
            user_id: "u".into(),
            sid: "s".into(),
            client_id: None,
            scope: None,
            created_at: UnixTime(0),
            expires_at: UnixTime(1_000),
            generation,
            rotated_at: rotated_at.map(UnixTime),
            sealed_successor: rotated_at.map(|_| vec![1]),
            revoked_at: None,
            jkt: None,
        }
    }

    #[test]
    fn current_token_rotates() {
        assert_eq!(
            decide(&family(0, None), 0, UnixTime(5), 10),
            Decision::Rotate
        );
        assert_eq!(
            decide(&family(3, Some(100)), 3, UnixTime(500), 10),
            Decision::Rotate
        );
    }

    #[test]
    fn previous_token_within_grace_is_a_retry() {
        let f = family(4, Some(100));
        assert_eq!(decide(&f, 3, UnixTime(100), 10), Decision::GraceRetry);
        assert_eq!(decide(&f, 3, UnixTime(109), 10), Decision::GraceRetry);
    }

    #[test]
    fn previous_token_after_grace_is_reuse() {
        let f = family(4, Some(100));
        assert_eq!(decide(&f, 3, UnixTime(110), 10), Decision::Reuse);
    }

    #[test]
    fn older_generations_are_always_reuse() {
        let f = family(4, Some(100));
        assert_eq!(decide(&f, 2, UnixTime(101), 10), Decision::Reuse);
        assert_eq!(decide(&f, 0, UnixTime(101), 10), Decision::Reuse);
    }

    #[test]
    fn zero_grace_disables_retries() {
        let f = family(4, Some(100));
        assert_eq!(decide(&f, 3, UnixTime(100), 0), Decision::Reuse);
    }

    #[test]
    fn revoked_and_expired_families_refuse_everything() {
        let mut f = family(1, Some(100));
        assert_eq!(decide(&f, 1, UnixTime(1_000), 10), Decision::Expired);
        f.revoked_at = Some(UnixTime(50));
        assert_eq!(decide(&f, 1, UnixTime(101), 10), Decision::Revoked);
    }

    #[test]
    fn transitions_carry_the_new_state() {
        let Transition::Rotate(after) =
            transition(family(3, Some(100)), 3, UnixTime(500), 10, &[7])
        else {
            panic!("rotate")
        };
        assert_eq!(
            (after.generation, after.rotated_at, after.sealed_successor),
            (4, Some(UnixTime(500)), Some(vec![7]))
        );
        let f = family(4, Some(100));
        let replayed = RefreshFamily {
            sealed_successor: None,
            ..f.clone()
        };
        assert_eq!(
            transition(f.clone(), 3, UnixTime(105), 10, &[7]),
            Transition::Replay {
                family: replayed,
                sealed: vec![1]
            },
            "the replay takes the sealed successor out"
        );
        let Transition::Revoke(revoked) = transition(f.clone(), 2, UnixTime(105), 10, &[7]) else {
            panic!("revoke")
        };
        assert_eq!(revoked.revoked_at, Some(UnixTime(105)));
        assert_eq!(revoked.sealed_successor, None);
        assert_eq!(
            transition(family(u32::MAX, None), u32::MAX, UnixTime(5), 10, &[7]),
            Transition::Refuse,
            "generation exhausted"
        );
        assert_eq!(
            transition(f, 4, UnixTime(1_000), 10, &[7]),
            Transition::Refuse,
            "expired"
        );
    }

    #[test]
    fn previous_token_replays_once_per_rotation() {
        let f = family(4, Some(100));
        let Transition::Replay { family: after, .. } = transition(f, 3, UnixTime(101), 10, &[7])
        else {
            panic!("first replay")
        };
        assert_eq!(decide(&after, 3, UnixTime(102), 10), Decision::Reuse);
        let Transition::Rotate(next) = transition(after, 4, UnixTime(103), 10, &[8]) else {
            panic!("rotate")
        };
        assert_eq!(decide(&next, 4, UnixTime(104), 10), Decision::GraceRetry);
        assert_eq!(
            decide(&next, 3, UnixTime(104), 10),
            Decision::Reuse,
            "once the successor is used, the token before it is reuse"
        );
    }

    #[test]
    fn sealed_successor_is_kept_only_while_a_replay_could_use_it() {
        let f = family(4, Some(100));
        assert!(keeps_sealed_successor(&f, UnixTime(109), 10));
        assert!(!keeps_sealed_successor(&f, UnixTime(110), 10));
        assert!(!keeps_sealed_successor(&f, UnixTime(100), 0));
        assert!(!keeps_sealed_successor(&family(0, None), UnixTime(100), 10));
        let mut revoked = f;
        revoked.revoked_at = Some(UnixTime(101));
        assert!(!keeps_sealed_successor(&revoked, UnixTime(102), 10));
    }

    #[test]
    fn successor_opens_only_with_the_previous_token() {
        let prev = OpaqueToken::generate(TokenKind::Refresh).unwrap();
        let next = OpaqueToken::generate(TokenKind::Refresh).unwrap();
        let other = OpaqueToken::generate(TokenKind::Refresh).unwrap();
        let sealed = seal_successor(&prev, &next).unwrap();
        assert_eq!(open_successor(&prev, &sealed).unwrap(), next);
        assert_eq!(open_successor(&other, &sealed), Err(SealError::Open));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(open_successor(&prev, &tampered), Err(SealError::Open));
        assert_eq!(open_successor(&prev, &[]), Err(SealError::Open));
    }
}
