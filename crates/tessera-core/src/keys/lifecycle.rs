//! The signing-key lifecycle as a state machine: `next → current → retiring → retired`, and
//! `revoked` from any status in an emergency.
//!
//! [`rotate`] and [`revoke`] (an operator's commands) and [`upkeep`] (the server's own
//! schedule) look at the stored keys and the time and return a [`Plan`]: the [`Step`]s that
//! carry the change out, in order, and what they achieve; or a [`LifecycleError`] saying why
//! not. They decide; the caller applies the steps to its store, one after another.
//!
//! Design decision: the order of the steps is part of the plan, because instances read the
//! store while the steps land. Every plan demotes the signing key before it promotes another,
//! so at most one key is ever `current`; and every key that is about to sign has been
//! published as `next` — which is why [`MIN_PUBLISHED_SECS`] is derived from
//! [`JWKS_MAX_AGE_SECS`], the time a verifier may keep an old copy of the JWKS.
//!
//! Several instances run [`upkeep`] on one store, and they agree because every step is
//! conditional: a status change names the status it moves the key *from* (a compare-and-set),
//! and a new `next` key is inserted only if there is none. Instances that planned the same
//! change race on the first step; one wins, and the others find the keys changed and stop.

use crate::jose::{Algorithm, JoseError};
use crate::keys::{KeyRecord, KeyRing, KeyStatus};
use crate::revocation::Revocation;
use crate::time::UnixTime;

/// How long verifiers may cache the JWKS (and the discovery document): its
/// `Cache-Control: max-age`.
pub const JWKS_MAX_AGE_SECS: u32 = 300;

/// How long a `next` key must have been published before it may sign: by then every verifier
/// honouring [`JWKS_MAX_AGE_SECS`] has fetched a JWKS that contains it.
// A lossless u32 → i64 widening; `i64::from` is not usable in a const.
pub const MIN_PUBLISHED_SECS: i64 = JWKS_MAX_AGE_SECS as i64;

/// How long a key revocation is kept on the revocation list: longer than any access token
/// Tessera issues lives, so every token the key signed has expired when the entry goes.
pub const KEY_REVOCATION_SECS: i64 = 24 * 3600;

/// The algorithm of the first key a rotation publishes when the store has no signing key (the
/// same the server picks for its first key).
pub const DEFAULT_ALGORITHM: Algorithm = Algorithm::EdDSA;

/// How often the server rotates its signing key by itself when `--key-rotation` is not given:
/// 30 days.
pub const DEFAULT_ROTATION_SECS: i64 = 30 * 24 * 3600;

impl KeyStatus {
    /// Whether the lifecycle lets a key in this status move to `to`: `next → current →
    /// retiring → retired`, and `revoked` from anywhere (again from `revoked`, which
    /// re-announces it).
    #[must_use]
    pub fn may_become(self, to: Self) -> bool {
        matches!(
            (self, to),
            (Self::Next, Self::Current)
                | (Self::Current, Self::Retiring)
                | (Self::Retiring, Self::Retired)
                | (_, Self::Revoked)
        )
    }
}

/// One change to the stored keys or the revocation list.
#[derive(Clone, Debug)]
pub enum Step {
    /// Store this newly generated `next` key — only if the store holds no `next` key (another
    /// instance may have just published one).
    Insert(KeyRecord),
    /// Move the stored key `kid` from `from` to `to` — only if it is still in `from`.
    SetStatus {
        /// The key.
        kid: String,
        /// The status the plan found it in.
        from: KeyStatus,
        /// Its new status.
        to: KeyStatus,
    },
    /// Record this revocation, so every instance stops trusting the key at once (the store's
    /// feed carries it) rather than at its next key reload.
    RecordRevocation(Revocation),
}

/// The steps of a lifecycle change, to apply in order, and what they achieve.
#[derive(Clone, Debug)]
pub struct Plan<Outcome> {
    /// The changes, in the order they must be applied.
    pub steps: Vec<Step>,
    /// What the steps achieve, for reporting.
    pub outcome: Outcome,
}

/// What a [`rotate`] plan achieves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// Phase one: a new key is published as `next`; it may sign after [`MIN_PUBLISHED_SECS`].
    Published {
        /// The new `next` key.
        next: String,
    },
    /// Phase two: the `next` key signs, the old signing key keeps verifying as `retiring`, and
    /// a new `next` key is published for the following rotation.
    Promoted {
        /// The new `current` key (the former `next`).
        current: String,
        /// The former `current` key, if there was one.
        retiring: Option<String>,
        /// The new `next` key.
        next: String,
        /// The keys that were `retiring` before and were retired first, to keep the JWKS at
        /// three keys: ones whose tokens had all expired, or with `force` ones whose tokens
        /// still lived (those tokens stop verifying).
        retired: Vec<String>,
    },
}

/// What a [`revoke`] plan achieves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRevocation {
    /// The revoked key.
    pub kid: String,
    /// The key that signs instead, if the revoked key was the signing key.
    pub successor: Option<String>,
}

/// Why a lifecycle change cannot be planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// The `next` key has not been published long enough for every verifier to know it.
    #[error("next key {kid} was published {age} s ago; verifiers may cache the JWKS for {min} s")]
    NextTooFresh {
        /// The `next` key.
        kid: String,
        /// Seconds since it was published.
        age: i64,
        /// Seconds it must have been published.
        min: i64,
    },
    /// A `retiring` key still verifies tokens it signed: demoting the signing key now would
    /// put a fourth key in the JWKS.
    #[error(
        "key {kid} is retiring until {retires_at} (Unix time, in {wait} s), when the last token \
         it signed expires; the JWKS holds at most a next, a current and a retiring key"
    )]
    RetiringKeyPending {
        /// The `retiring` key that retires last.
        kid: String,
        /// When the schedule retires it.
        retires_at: i64,
        /// Seconds until then.
        wait: i64,
    },
    /// No stored key has this `kid`.
    #[error("no key {0:?}")]
    NoSuchKey(String),
    /// Generating a new key failed.
    #[error(transparent)]
    Generate(#[from] JoseError),
}

fn set(kid: &str, from: KeyStatus, to: KeyStatus) -> Step {
    Step::SetStatus {
        kid: kid.to_owned(),
        from,
        to,
    }
}

fn with_status(records: &[KeyRecord], status: KeyStatus) -> Option<&KeyRecord> {
    records.iter().find(|k| k.status == status)
}

/// The next step of the two-phase rotation at `now`. Without a `next` key: publish one (of the
/// signing key's algorithm). With one published at least [`MIN_PUBLISHED_SECS`] ago (or
/// sooner with `force`): retire the `retiring` keys, demote the `current` key to `retiring`,
/// promote `next` to `current`, and publish a new `next` — so the JWKS, like the
/// [`upkeep`] schedule's, never holds more than three keys. A `retiring` key retires when
/// `schedule` says every token it signed has expired; before that only `force` retires it,
/// early: an operator who must rotate now accepts that those tokens stop verifying.
///
/// # Errors
/// [`LifecycleError::NextTooFresh`] if the `next` key is too fresh, or
/// [`LifecycleError::RetiringKeyPending`] if a `retiring` key's tokens still live, and
/// `force` is not set; [`LifecycleError::Generate`] if a new key cannot be generated.
pub fn rotate(
    records: &[KeyRecord],
    now: UnixTime,
    force: bool,
    schedule: &Schedule,
) -> Result<Plan<Rotation>, LifecycleError> {
    let current = with_status(records, KeyStatus::Current);
    let Some(next) = with_status(records, KeyStatus::Next) else {
        let alg = current.map_or(DEFAULT_ALGORITHM, |k| k.alg);
        let published = KeyRing::generate_record(alg, KeyStatus::Next, now)?;
        return Ok(Plan {
            outcome: Rotation::Published {
                next: published.kid.clone(),
            },
            steps: vec![Step::Insert(published)],
        });
    };
    let age = now.since(next.created_at);
    if age < MIN_PUBLISHED_SECS && !force {
        return Err(LifecycleError::NextTooFresh {
            kid: next.kid.clone(),
            age,
            min: MIN_PUBLISHED_SECS,
        });
    }
    let retiring: Vec<&KeyRecord> = records
        .iter()
        .filter(|k| k.status == KeyStatus::Retiring)
        .collect();
    if let Some(pending) = last_to_retire(&retiring, records, now, schedule).filter(|_| !force) {
        return Err(pending);
    }
    let following = KeyRing::generate_record(next.alg, KeyStatus::Next, now)?;
    // Retire first: the demotion below adds a `retiring` key.
    let mut steps: Vec<Step> = retiring
        .iter()
        .map(|k| set(&k.kid, KeyStatus::Retiring, KeyStatus::Retired))
        .collect();
    steps.extend(promote(current, next));
    steps.push(Step::Insert(following.clone()));
    Ok(Plan {
        steps,
        outcome: Rotation::Promoted {
            current: next.kid.clone(),
            retiring: current.map(|k| k.kid.clone()),
            next: following.kid,
            retired: retiring.iter().map(|k| k.kid.clone()).collect(),
        },
    })
}

/// Of the `retiring` keys whose tokens still live at `now`, the one that retires last, as
/// the reason a rotation must wait until then.
fn last_to_retire(
    retiring: &[&KeyRecord],
    records: &[KeyRecord],
    now: UnixTime,
    schedule: &Schedule,
) -> Option<LifecycleError> {
    retiring
        .iter()
        .filter_map(|k| Some((k, schedule.next_change(k, records)?)))
        .filter(|(_, at)| at.0 > now.0)
        .max_by_key(|(_, at)| at.0)
        .map(|(k, at)| LifecycleError::RetiringKeyPending {
            kid: k.kid.clone(),
            retires_at: at.0,
            wait: at.since(now),
        })
}

/// The steps that make `next` the signing key and demote `current`, in that order.
fn promote(current: Option<&KeyRecord>, next: &KeyRecord) -> Vec<Step> {
    let mut steps = Vec::with_capacity(3);
    // Demote first: at most one key is ever current. Instances that read the store in between
    // find no current key, see that the key they sign with is still trusted, and keep signing
    // with it (the server's `reload_keys`); they already trust the promoted key as `next`.
    if let Some(cur) = current {
        steps.push(set(&cur.kid, KeyStatus::Current, KeyStatus::Retiring));
    }
    steps.push(set(&next.kid, KeyStatus::Next, KeyStatus::Current));
    steps
}

/// Emergency revocation of `kid` at `now`: the key stops verifying and is unpublished, and a
/// key revocation (kept [`KEY_REVOCATION_SECS`]) tells every instance at once. If it was the
/// signing key, the `next` key — or, without one, a newly generated key of the same
/// algorithm — signs instead, unpublished until then: a compromised key cannot wait for
/// [`MIN_PUBLISHED_SECS`]. Revoking a revoked key records its revocation again.
///
/// # Errors
/// [`LifecycleError::NoSuchKey`] if no key has this `kid`; [`LifecycleError::Generate`] if a
/// successor cannot be generated.
pub fn revoke(
    records: &[KeyRecord],
    kid: &str,
    now: UnixTime,
) -> Result<Plan<KeyRevocation>, LifecycleError> {
    let Some(target) = records.iter().find(|k| k.kid == kid) else {
        return Err(LifecycleError::NoSuchKey(kid.to_owned()));
    };
    let mut steps = Vec::with_capacity(5);
    let mut successor = None;
    if target.status == KeyStatus::Current {
        let next = match with_status(records, KeyStatus::Next) {
            Some(next) => next.kid.clone(),
            None => {
                let fresh = KeyRing::generate_record(target.alg, KeyStatus::Next, now)?;
                let fresh_kid = fresh.kid.clone();
                steps.push(Step::Insert(fresh));
                fresh_kid
            }
        };
        // Through `retiring`, not straight to `revoked`: until the successor is current, an
        // instance that finds no current key and no trusted signing key makes a first key of
        // its own. The revocation below still kills the key's tokens at once.
        steps.push(set(kid, KeyStatus::Current, KeyStatus::Retiring));
        steps.push(set(&next, KeyStatus::Next, KeyStatus::Current));
        successor = Some(next);
        steps.push(set(kid, KeyStatus::Retiring, KeyStatus::Revoked));
    } else {
        steps.push(set(kid, target.status, KeyStatus::Revoked));
    }
    steps.push(Step::RecordRevocation(Revocation::Key {
        kid: kid.to_owned(),
        expires_at: now.plus(KEY_REVOCATION_SECS),
    }));
    Ok(Plan {
        steps,
        outcome: KeyRevocation {
            kid: kid.to_owned(),
            successor,
        },
    })
}

/// The shortest time a `next` key is published before it signs, however short the rotation
/// period: twice the interval at which servers reload their keys (1 s), so every instance
/// trusts a key before any instance signs with it.
pub const MIN_PUBLICATION_SECS: i64 = 2;

/// The server's own rotation schedule ([`upkeep`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// How long a key signs before its successor takes over.
    pub rotation_secs: i64,
    /// How long after a key stops signing the last token it signed may still be accepted:
    /// the longest access-token lifetime plus the verifiers' leeway. A `retiring` key retires
    /// this long after it was demoted.
    pub token_lifetime_secs: i64,
}

/// What an [`upkeep`] plan achieves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upkeep {
    /// A `retiring` key whose tokens have all expired is retired.
    Retired {
        /// The retired key.
        kid: String,
    },
    /// The signing key's successor is published as `next`.
    Published {
        /// The new `next` key.
        next: String,
    },
    /// The `next` key signs; the old signing key, if any, is `retiring`.
    Promoted {
        /// The new `current` key.
        current: String,
        /// The former `current` key.
        retiring: Option<String>,
    },
}

impl Schedule {
    /// How long a `next` key is published before it signs, and so also how long verifiers
    /// may cache the JWKS (its `max-age`): half the rotation period, capped at
    /// [`JWKS_MAX_AGE_SECS`], and at least [`MIN_PUBLICATION_SECS`].
    #[must_use]
    pub fn publication_secs(&self) -> u32 {
        let half =
            (self.rotation_secs / 2).clamp(MIN_PUBLICATION_SECS, i64::from(JWKS_MAX_AGE_SECS));
        u32::try_from(half).unwrap_or(JWKS_MAX_AGE_SECS)
    }

    /// When the schedule next changes `key`'s status, if it ever does: a `current` key is
    /// demoted, a `next` key promoted, a `retiring` key retired. A time in the past means
    /// the change is overdue — waiting for an instance to run it, or (a promotion) for the
    /// `retiring` keys to retire first.
    #[must_use]
    pub fn next_change(&self, key: &KeyRecord, records: &[KeyRecord]) -> Option<UnixTime> {
        let publication = i64::from(self.publication_secs());
        match key.status {
            KeyStatus::Current => Some(key.status_since.plus(self.rotation_secs)),
            KeyStatus::Next => Some(match with_status(records, KeyStatus::Current) {
                Some(cur) => UnixTime(
                    cur.status_since
                        .plus(self.rotation_secs)
                        .0
                        .max(key.status_since.plus(publication).0),
                ),
                None => key.status_since,
            }),
            KeyStatus::Retiring => Some(key.status_since.plus(self.token_lifetime_secs)),
            KeyStatus::Retired | KeyStatus::Revoked => None,
        }
    }
}

/// The one change the schedule asks for at `now`, if any, in order of urgency:
///
/// 1. retire a `retiring` key whose tokens have all expired;
/// 2. promote the `next` key when no key is `current` (a rotation cut short);
/// 3. publish a `next` key [`Schedule::publication_secs`] before the signing key's rotation
///    period ends;
/// 4. promote the `next` key once the period has ended, it has been published long enough,
///    and no `retiring` key is left — so the JWKS never holds more than a `next`, a `current`
///    and a `retiring` key.
///
/// # Errors
/// [`LifecycleError::Generate`] if a new key cannot be generated.
pub fn upkeep(
    records: &[KeyRecord],
    now: UnixTime,
    schedule: &Schedule,
) -> Result<Option<Plan<Upkeep>>, LifecycleError> {
    let due = |k: &KeyRecord| {
        schedule
            .next_change(k, records)
            .is_some_and(|at| at.0 <= now.0)
    };
    if let Some(old) = records
        .iter()
        .find(|k| k.status == KeyStatus::Retiring && due(k))
    {
        return Ok(Some(Plan {
            steps: vec![set(&old.kid, KeyStatus::Retiring, KeyStatus::Retired)],
            outcome: Upkeep::Retired {
                kid: old.kid.clone(),
            },
        }));
    }
    let current = with_status(records, KeyStatus::Current);
    let next = with_status(records, KeyStatus::Next);
    let publication = i64::from(schedule.publication_secs());
    let plan = match (current, next) {
        // No signing key at all is the server's first start, which makes its own first key.
        (None, None) => None,
        (Some(cur), None)
            if now.0
                >= cur
                    .status_since
                    .plus(schedule.rotation_secs - publication)
                    .0 =>
        {
            let published = KeyRing::generate_record(cur.alg, KeyStatus::Next, now)?;
            Some(Plan {
                outcome: Upkeep::Published {
                    next: published.kid.clone(),
                },
                steps: vec![Step::Insert(published)],
            })
        }
        (None, Some(next)) => Some(promoted(None, next)),
        (Some(cur), Some(next))
            if due(next) && with_status(records, KeyStatus::Retiring).is_none() =>
        {
            Some(promoted(Some(cur), next))
        }
        _ => None,
    };
    Ok(plan)
}

fn promoted(current: Option<&KeyRecord>, next: &KeyRecord) -> Plan<Upkeep> {
    Plan {
        steps: promote(current, next),
        outcome: Upkeep::Promoted {
            current: next.kid.clone(),
            retiring: current.map(|k| k.kid.clone()),
        },
    }
}

#[cfg(test)]
mod tests;
