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
/// sooner with `force`): demote the `current` key to `retiring`, promote `next` to `current`,
/// and publish a new `next`.
///
/// # Errors
/// [`LifecycleError::NextTooFresh`] if the `next` key is too fresh and `force` is not set;
/// [`LifecycleError::Generate`] if a new key cannot be generated.
pub fn rotate(
    records: &[KeyRecord],
    now: UnixTime,
    force: bool,
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
    let following = KeyRing::generate_record(next.alg, KeyStatus::Next, now)?;
    let mut steps = promote(current, next);
    steps.push(Step::Insert(following.clone()));
    Ok(Plan {
        steps,
        outcome: Rotation::Promoted {
            current: next.kid.clone(),
            retiring: current.map(|k| k.kid.clone()),
            next: following.kid,
        },
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
mod tests {
    use super::*;

    const T0: UnixTime = UnixTime(1_700_000_000);

    fn key(alg: Algorithm, status: KeyStatus, created_at: UnixTime) -> KeyRecord {
        KeyRing::generate_record(alg, status, created_at).unwrap()
    }

    /// Applies `steps` to `records` at `now` as a store would, checking after every step
    /// that the step's condition holds, that the move is one the lifecycle allows and that at
    /// most one key is current.
    fn apply_at(records: &mut Vec<KeyRecord>, steps: &[Step], now: UnixTime) -> Vec<Revocation> {
        let mut revocations = Vec::new();
        for step in steps {
            match step {
                Step::Insert(record) => {
                    assert!(records.iter().all(|k| k.kid != record.kid));
                    assert_eq!(record.status, KeyStatus::Next, "new keys start as next");
                    assert!(
                        with_status(records, KeyStatus::Next).is_none(),
                        "two next keys"
                    );
                    records.push(record.clone());
                }
                Step::SetStatus { kid, from, to } => {
                    let k = records.iter_mut().find(|k| &k.kid == kid).unwrap();
                    assert_eq!(k.status, *from, "{kid} moved meanwhile");
                    assert!(from.may_become(*to), "{from:?} → {to:?}");
                    k.status = *to;
                    k.status_since = now;
                }
                Step::RecordRevocation(r) => revocations.push(r.clone()),
            }
            let current = records
                .iter()
                .filter(|k| k.status == KeyStatus::Current)
                .count();
            assert!(current <= 1, "two current keys after {step:?}");
            KeyRing::from_records(records).unwrap();
        }
        revocations
    }

    fn apply(records: &mut Vec<KeyRecord>, steps: &[Step]) -> Vec<Revocation> {
        apply_at(records, steps, T0)
    }

    fn status_of(records: &[KeyRecord], kid: &str) -> KeyStatus {
        records.iter().find(|k| k.kid == kid).unwrap().status
    }

    #[test]
    fn constants_agree_with_each_other() {
        assert_eq!(MIN_PUBLISHED_SECS, 300);
        assert_eq!(MIN_PUBLISHED_SECS, i64::from(JWKS_MAX_AGE_SECS));
    }

    #[test]
    fn the_lifecycle_allows_only_its_edges() {
        use KeyStatus::{Current, Next, Retired, Retiring, Revoked};
        let all = [Next, Current, Retiring, Retired, Revoked];
        for from in all {
            for to in all {
                let allowed = matches!(
                    (from, to),
                    (Next, Current) | (Current, Retiring) | (Retiring, Retired) | (_, Revoked)
                );
                assert_eq!(from.may_become(to), allowed, "{from:?} → {to:?}");
            }
        }
    }

    #[test]
    fn rotating_an_empty_store_publishes_a_default_next_key() {
        let plan = rotate(&[], T0, false).unwrap();
        let [Step::Insert(next)] = plan.steps.as_slice() else {
            panic!("{:?}", plan.steps)
        };
        assert_eq!(
            (next.alg, next.status, next.created_at),
            (DEFAULT_ALGORITHM, KeyStatus::Next, T0)
        );
        assert_eq!(
            plan.outcome,
            Rotation::Published {
                next: next.kid.clone()
            }
        );
    }

    #[test]
    fn rotating_without_a_next_key_publishes_one_of_the_signing_algorithm() {
        let cur = key(Algorithm::ES256, KeyStatus::Current, T0);
        let mut records = vec![cur.clone()];
        let plan = rotate(&records, T0.plus(5), true).unwrap();
        apply(&mut records, &plan.steps);
        let Rotation::Published { next } = plan.outcome else {
            panic!("{:?}", plan.outcome)
        };
        assert_eq!(status_of(&records, &cur.kid), KeyStatus::Current);
        assert_eq!(status_of(&records, &next), KeyStatus::Next);
        let published = records.iter().find(|k| k.kid == next).unwrap();
        assert_eq!(
            (published.alg, published.created_at),
            (Algorithm::ES256, T0.plus(5))
        );
    }

    #[test]
    fn a_next_key_published_too_recently_is_not_promoted() {
        let cur = key(Algorithm::EdDSA, KeyStatus::Current, T0);
        let next = key(Algorithm::EdDSA, KeyStatus::Next, T0.plus(100));
        let now = T0.plus(100 + MIN_PUBLISHED_SECS - 1);
        let err = rotate(&[cur, next.clone()], now, false).unwrap_err();
        let LifecycleError::NextTooFresh { kid, age, min } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            (kid.as_str(), *age, *min),
            (
                next.kid.as_str(),
                MIN_PUBLISHED_SECS - 1,
                MIN_PUBLISHED_SECS
            )
        );
        assert_eq!(
            err.to_string(),
            format!(
                "next key {} was published 299 s ago; verifiers may cache the JWKS for 300 s",
                next.kid
            )
        );
    }

    #[test]
    fn a_published_next_key_is_promoted_after_the_old_one_is_demoted() {
        let cur = key(Algorithm::EdDSA, KeyStatus::Current, T0);
        let old = key(Algorithm::EdDSA, KeyStatus::Retiring, T0);
        let next = key(Algorithm::ES256, KeyStatus::Next, T0.plus(10));
        let now = T0.plus(10 + MIN_PUBLISHED_SECS);
        let mut records = vec![old.clone(), cur.clone(), next.clone()];
        let plan = rotate(&records, now, false).unwrap();

        let Rotation::Promoted {
            current,
            retiring,
            next: following,
        } = plan.outcome.clone()
        else {
            panic!("{:?}", plan.outcome)
        };
        assert_eq!(
            (current.as_str(), retiring.as_deref()),
            (next.kid.as_str(), Some(cur.kid.as_str()))
        );
        let [
            Step::SetStatus {
                kid: demoted,
                from: KeyStatus::Current,
                to: KeyStatus::Retiring,
            },
            Step::SetStatus {
                kid: promoted,
                from: KeyStatus::Next,
                to: KeyStatus::Current,
            },
            Step::Insert(inserted),
        ] = plan.steps.as_slice()
        else {
            panic!("{:?}", plan.steps)
        };
        assert_eq!((demoted, promoted), (&cur.kid, &next.kid));
        assert_eq!(
            (&inserted.kid, inserted.alg, inserted.created_at),
            (&following, Algorithm::ES256, now)
        );

        apply(&mut records, &plan.steps);
        assert_eq!(status_of(&records, &old.kid), KeyStatus::Retiring);
        assert_eq!(status_of(&records, &cur.kid), KeyStatus::Retiring);
        assert_eq!(status_of(&records, &next.kid), KeyStatus::Current);
        assert_eq!(status_of(&records, &following), KeyStatus::Next);
    }

    #[test]
    fn force_promotes_a_fresh_next_key_even_without_a_current_one() {
        let next = key(Algorithm::EdDSA, KeyStatus::Next, T0);
        let mut records = vec![next.clone()];
        let plan = rotate(&records, T0, true).unwrap();
        apply(&mut records, &plan.steps);
        let Rotation::Promoted {
            current, retiring, ..
        } = plan.outcome
        else {
            panic!("{:?}", plan.outcome)
        };
        assert_eq!((current, retiring), (next.kid.clone(), None));
        assert_eq!(status_of(&records, &next.kid), KeyStatus::Current);
    }

    #[test]
    fn rotating_once_per_publication_time_runs_the_whole_cycle() {
        let first = key(Algorithm::EdDSA, KeyStatus::Current, T0);
        let mut records = vec![first.clone()];
        let mut now = T0;
        for _ in 0..3 {
            let plan = rotate(&records, now, false).unwrap();
            apply(&mut records, &plan.steps);
            now = now.plus(MIN_PUBLISHED_SECS);
        }
        // Published, promoted, promoted: the first two keys retiring, one current, one next.
        assert_eq!(records.len(), 4);
        assert_eq!(status_of(&records, &first.kid), KeyStatus::Retiring);
        let statuses: Vec<KeyStatus> = records.iter().map(|k| k.status).collect();
        assert_eq!(
            statuses,
            [
                KeyStatus::Retiring,
                KeyStatus::Retiring,
                KeyStatus::Current,
                KeyStatus::Next
            ]
        );
    }

    #[test]
    fn revoking_an_unknown_key_is_refused() {
        let cur = key(Algorithm::EdDSA, KeyStatus::Current, T0);
        let err = revoke(&[cur], "nope", T0).unwrap_err();
        assert!(matches!(&err, LifecycleError::NoSuchKey(kid) if kid == "nope"));
        assert_eq!(err.to_string(), "no key \"nope\"");
    }

    #[test]
    fn revoking_a_key_that_does_not_sign_revokes_only_it() {
        for status in [KeyStatus::Next, KeyStatus::Retiring, KeyStatus::Revoked] {
            let cur = key(Algorithm::EdDSA, KeyStatus::Current, T0);
            let target = key(Algorithm::EdDSA, status, T0);
            let mut records = vec![cur.clone(), target.clone()];
            let plan = revoke(&records, &target.kid, T0.plus(7)).unwrap();
            assert_eq!(
                plan.outcome,
                KeyRevocation {
                    kid: target.kid.clone(),
                    successor: None
                }
            );
            let revocations = apply(&mut records, &plan.steps);
            assert_eq!(plan.steps.len(), 2, "{status:?}: {:?}", plan.steps);
            assert_eq!(
                revocations,
                [Revocation::Key {
                    kid: target.kid.clone(),
                    expires_at: T0.plus(7 + KEY_REVOCATION_SECS)
                }]
            );
            assert_eq!(status_of(&records, &target.kid), KeyStatus::Revoked);
            assert_eq!(status_of(&records, &cur.kid), KeyStatus::Current);
        }
    }

    #[test]
    fn revoking_the_signing_key_hands_signing_to_the_next_key() {
        let cur = key(Algorithm::EdDSA, KeyStatus::Current, T0);
        let next = key(Algorithm::EdDSA, KeyStatus::Next, T0.plus(1));
        let mut records = vec![cur.clone(), next.clone()];
        let plan = revoke(&records, &cur.kid, T0.plus(2)).unwrap();
        assert_eq!(plan.outcome.successor.as_deref(), Some(next.kid.as_str()));
        let order: Vec<(&str, KeyStatus)> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::SetStatus { kid, to, .. } => Some((kid.as_str(), *to)),
                _ => None,
            })
            .collect();
        assert_eq!(
            order,
            [
                (cur.kid.as_str(), KeyStatus::Retiring),
                (next.kid.as_str(), KeyStatus::Current),
                (cur.kid.as_str(), KeyStatus::Revoked),
            ]
        );
        assert!(matches!(
            plan.steps.last(),
            Some(Step::RecordRevocation(Revocation::Key { kid, .. })) if *kid == cur.kid
        ));
        let revocations = apply(&mut records, &plan.steps);
        assert_eq!(revocations.len(), 1);
        assert_eq!(status_of(&records, &cur.kid), KeyStatus::Revoked);
        assert_eq!(status_of(&records, &next.kid), KeyStatus::Current);
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn revoking_the_signing_key_without_a_next_key_generates_its_successor() {
        let cur = key(Algorithm::ES256, KeyStatus::Current, T0);
        let mut records = vec![cur.clone()];
        let plan = revoke(&records, &cur.kid, T0.plus(3)).unwrap();
        let Some(Step::Insert(fresh)) = plan.steps.first() else {
            panic!("{:?}", plan.steps)
        };
        assert_eq!(
            (fresh.alg, fresh.created_at),
            (Algorithm::ES256, T0.plus(3))
        );
        assert_eq!(plan.outcome.successor.as_ref(), Some(&fresh.kid));
        apply(&mut records, &plan.steps);
        assert_eq!(status_of(&records, &cur.kid), KeyStatus::Revoked);
        assert_eq!(status_of(&records, &fresh.kid), KeyStatus::Current);
        let ring = KeyRing::from_records(&records).unwrap();
        assert_eq!(ring.current().unwrap().kid(), fresh.kid);
        assert!(ring.verifier(&cur.kid).is_none());
    }

    const SCHEDULE: Schedule = Schedule {
        rotation_secs: 100,
        token_lifetime_secs: 30,
    };

    /// Runs the schedule second by second from one signing key, checking at every second
    /// what verifiers rely on; returns the keys and how many promotions happened.
    fn run_schedule(schedule: &Schedule, seconds: i64) -> (Vec<KeyRecord>, usize) {
        let mut records = vec![key(Algorithm::EdDSA, KeyStatus::Current, T0)];
        let mut promotions = 0;
        let publication = i64::from(schedule.publication_secs());
        for t in 1..=seconds {
            let now = T0.plus(t);
            let Some(plan) = upkeep(&records, now, schedule).unwrap() else {
                continue;
            };
            let before = records.clone();
            apply_at(&mut records, &plan.steps, now);
            let ring = KeyRing::from_records(&records).unwrap();
            let published = ring.jwks()["keys"].as_array().unwrap().len();
            assert!(published <= 3, "{published} keys published at +{t}");
            match &plan.outcome {
                Upkeep::Promoted { current, retiring } => {
                    promotions += 1;
                    let was = before.iter().find(|k| &k.kid == current).unwrap();
                    assert!(
                        now.since(was.status_since) >= publication,
                        "promoted unpublished"
                    );
                    let old = retiring.as_ref().unwrap();
                    let old = before.iter().find(|k| &k.kid == old).unwrap();
                    assert!(now.since(old.status_since) >= schedule.rotation_secs);
                }
                Upkeep::Retired { kid } => {
                    let was = before.iter().find(|k| &k.kid == kid).unwrap();
                    // Every token it signed (until its demotion) has expired.
                    assert_eq!(now.since(was.status_since), schedule.token_lifetime_secs);
                }
                Upkeep::Published { .. } => {}
            }
        }
        (records, promotions)
    }

    #[test]
    fn the_publication_time_is_half_the_rotation_within_the_jwks_cache_time() {
        let with = |rotation_secs| Schedule {
            rotation_secs,
            token_lifetime_secs: 0,
        };
        assert_eq!(
            with(DEFAULT_ROTATION_SECS).publication_secs(),
            JWKS_MAX_AGE_SECS
        );
        assert_eq!(with(100).publication_secs(), 50);
        assert_eq!(with(3).publication_secs(), 2);
        assert_eq!(with(0).publication_secs(), 2);
    }

    #[test]
    fn the_schedule_rotates_every_period_and_retires_old_keys() {
        // Promotions at +100, +200, … +1000; the last retiring key retires at +1030.
        let (records, promotions) = run_schedule(&SCHEDULE, 1_050);
        assert_eq!(promotions, 10);
        // Every promoted key's predecessor retired once its tokens had expired.
        let retired = records
            .iter()
            .filter(|k| k.status == KeyStatus::Retired)
            .count();
        assert_eq!(retired, 10);
        assert!(with_status(&records, KeyStatus::Retiring).is_none());
        assert!(with_status(&records, KeyStatus::Current).is_some());
    }

    #[test]
    fn a_promotion_waits_for_the_retiring_key_when_tokens_outlive_the_period() {
        let schedule = Schedule {
            rotation_secs: 20,
            token_lifetime_secs: 50,
        };
        // Checked every second: never more than three published keys.
        let (_, promotions) = run_schedule(&schedule, 1_000);
        // The first at +20; then each one a second after its predecessor retired (+71, +122,
        // …), every 51 s rather than every rotation period of 20 s.
        assert_eq!(promotions, 20);
    }

    #[test]
    fn nothing_is_due_before_its_time() {
        let cur = key(Algorithm::ES256, KeyStatus::Current, T0);
        let publication = i64::from(SCHEDULE.publication_secs());
        let publish_at = T0.plus(SCHEDULE.rotation_secs - publication);
        let records = vec![cur.clone()];
        assert!(
            upkeep(&records, publish_at.plus(-1), &SCHEDULE)
                .unwrap()
                .is_none()
        );
        let plan = upkeep(&records, publish_at, &SCHEDULE).unwrap().unwrap();
        let [Step::Insert(next)] = plan.steps.as_slice() else {
            panic!("{:?}", plan.steps)
        };
        assert_eq!((next.alg, next.status), (Algorithm::ES256, KeyStatus::Next));

        let mut records = records;
        records.push(next.clone());
        let promote_at = T0.plus(SCHEDULE.rotation_secs);
        assert_eq!(SCHEDULE.next_change(next, &records), Some(promote_at));
        assert_eq!(SCHEDULE.next_change(&cur, &records), Some(promote_at));
        assert!(
            upkeep(&records, promote_at.plus(-1), &SCHEDULE)
                .unwrap()
                .is_none()
        );
        let plan = upkeep(&records, promote_at, &SCHEDULE).unwrap().unwrap();
        assert_eq!(
            plan.outcome,
            Upkeep::Promoted {
                current: next.kid.clone(),
                retiring: Some(cur.kid.clone())
            }
        );
    }

    #[test]
    fn a_rotation_cut_short_is_finished_at_once() {
        // The winner of a promotion stopped after demoting the old key.
        let old = key(Algorithm::EdDSA, KeyStatus::Retiring, T0);
        let next = key(Algorithm::EdDSA, KeyStatus::Next, T0);
        let records = vec![old, next.clone()];
        let plan = upkeep(&records, T0, &SCHEDULE).unwrap().unwrap();
        assert_eq!(
            plan.outcome,
            Upkeep::Promoted {
                current: next.kid,
                retiring: None
            }
        );
    }

    #[test]
    fn an_empty_store_is_left_to_the_first_start() {
        assert!(upkeep(&[], T0, &SCHEDULE).unwrap().is_none());
    }

    #[test]
    fn instances_planning_the_same_change_cannot_both_apply_it() {
        let cur = key(Algorithm::EdDSA, KeyStatus::Current, T0);
        let next = key(Algorithm::EdDSA, KeyStatus::Next, T0);
        let mut records = vec![cur, next];
        let now = T0.plus(SCHEDULE.rotation_secs);
        let winner = upkeep(&records, now, &SCHEDULE).unwrap().unwrap();
        let loser = upkeep(&records, now, &SCHEDULE).unwrap().unwrap();
        apply_at(&mut records, &winner.steps, now);
        // The loser's first step names a status its key no longer has.
        let Some(Step::SetStatus { kid, from, .. }) = loser.steps.first() else {
            panic!("{:?}", loser.steps)
        };
        assert_ne!(status_of(&records, kid), *from);
    }
}
