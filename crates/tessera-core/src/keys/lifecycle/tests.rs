use super::*;

const T0: UnixTime = UnixTime(1_700_000_000);

/// The server's default schedule, for the operator's rotations: 10-minute access tokens plus
/// a minute of leeway.
const DEFAULTS: Schedule = Schedule {
    rotation_secs: DEFAULT_ROTATION_SECS,
    token_lifetime_secs: 660,
};

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
        let ring = KeyRing::from_records(records).unwrap();
        let published = ring.jwks()["keys"].as_array().unwrap().len();
        assert!(published <= 3, "{published} keys published after {step:?}");
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
    let plan = rotate(&[], T0, false, &DEFAULTS).unwrap();
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
    let plan = rotate(&records, T0.plus(5), true, &DEFAULTS).unwrap();
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
    let err = rotate(&[cur, next.clone()], now, false, &DEFAULTS).unwrap_err();
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
    // Demoted at T0: every token it signed has expired by `now`.
    let old = key(Algorithm::EdDSA, KeyStatus::Retiring, T0);
    let next = key(
        Algorithm::ES256,
        KeyStatus::Next,
        T0.plus(DEFAULTS.token_lifetime_secs),
    );
    let now = next.created_at.plus(MIN_PUBLISHED_SECS);
    let mut records = vec![old.clone(), cur.clone(), next.clone()];
    let plan = rotate(&records, now, false, &DEFAULTS).unwrap();

    let Rotation::Promoted {
        current,
        retiring,
        next: following,
        retired,
    } = plan.outcome.clone()
    else {
        panic!("{:?}", plan.outcome)
    };
    assert_eq!(
        (current.as_str(), retiring.as_deref(), retired.as_slice()),
        (
            next.kid.as_str(),
            Some(cur.kid.as_str()),
            [old.kid.clone()].as_slice()
        )
    );
    let [
        Step::SetStatus {
            kid: gone,
            from: KeyStatus::Retiring,
            to: KeyStatus::Retired,
        },
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
    assert_eq!((gone, demoted, promoted), (&old.kid, &cur.kid, &next.kid));
    assert_eq!(
        (&inserted.kid, inserted.alg, inserted.created_at),
        (&following, Algorithm::ES256, now)
    );

    apply(&mut records, &plan.steps);
    assert_eq!(status_of(&records, &old.kid), KeyStatus::Retired);
    assert_eq!(status_of(&records, &cur.kid), KeyStatus::Retiring);
    assert_eq!(status_of(&records, &next.kid), KeyStatus::Current);
    assert_eq!(status_of(&records, &following), KeyStatus::Next);
}

#[test]
fn a_rotation_waits_for_the_retiring_key_unless_forced() {
    let old = key(Algorithm::EdDSA, KeyStatus::Retiring, T0);
    let cur = key(Algorithm::EdDSA, KeyStatus::Current, T0);
    let next = key(Algorithm::EdDSA, KeyStatus::Next, T0);
    let now = T0.plus(MIN_PUBLISHED_SECS);
    let mut records = vec![old.clone(), cur.clone(), next.clone()];

    // Promoting now would publish a fourth key while `old`'s tokens still live.
    let err = rotate(&records, now, false, &DEFAULTS).unwrap_err();
    let LifecycleError::RetiringKeyPending {
        kid,
        retires_at,
        wait,
    } = &err
    else {
        panic!("{err:?}")
    };
    let retires = T0.plus(DEFAULTS.token_lifetime_secs);
    assert_eq!(
        (kid.as_str(), *retires_at, *wait),
        (old.kid.as_str(), retires.0, retires.since(now))
    );
    assert!(
        err.to_string()
            .contains("at most a next, a current and a retiring key")
    );
    // From the moment the schedule would retire it, the rotation retires it itself.
    assert!(rotate(&records, retires, false, &DEFAULTS).is_ok());

    // Forced, it is retired early; the JWKS still holds three keys (checked by `apply`).
    let plan = rotate(&records, now, true, &DEFAULTS).unwrap();
    apply(&mut records, &plan.steps);
    let Rotation::Promoted { retired, .. } = &plan.outcome else {
        panic!("{:?}", plan.outcome)
    };
    assert_eq!(retired, std::slice::from_ref(&old.kid));
    assert_eq!(status_of(&records, &old.kid), KeyStatus::Retired);
    assert_eq!(status_of(&records, &cur.kid), KeyStatus::Retiring);
    assert_eq!(status_of(&records, &next.kid), KeyStatus::Current);
}

#[test]
fn force_promotes_a_fresh_next_key_even_without_a_current_one() {
    let next = key(Algorithm::EdDSA, KeyStatus::Next, T0);
    let mut records = vec![next.clone()];
    let plan = rotate(&records, T0, true, &DEFAULTS).unwrap();
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
    // Published, promoted; then the next promotion waits for `first` to retire.
    for _ in 0..2 {
        let plan = rotate(&records, now, false, &DEFAULTS).unwrap();
        apply_at(&mut records, &plan.steps, now);
        now = now.plus(MIN_PUBLISHED_SECS);
    }
    let Err(LifecycleError::RetiringKeyPending {
        kid, retires_at, ..
    }) = rotate(&records, now, false, &DEFAULTS)
    else {
        panic!("promoted over a retiring key")
    };
    assert_eq!(kid, first.kid);
    let plan = rotate(&records, UnixTime(retires_at), false, &DEFAULTS).unwrap();
    apply_at(&mut records, &plan.steps, UnixTime(retires_at));
    // The first key retired, the second retiring, one current, one next.
    let statuses: Vec<KeyStatus> = records.iter().map(|k| k.status).collect();
    assert_eq!(
        statuses,
        [
            KeyStatus::Retired,
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
