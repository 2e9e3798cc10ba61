//! Checks of [`crate::KeyStore`].

use std::sync::Arc;

use tessera_core::jose::Algorithm;
use tessera_core::keys::{KeyRecord, KeyRing, KeyStatus};

use super::NOW;
use crate::{Store, StoreError};

/// Racers in the one-key-per-status check.
const RACERS: usize = 8;

fn record(alg: Algorithm, status: KeyStatus) -> KeyRecord {
    KeyRing::generate_record(alg, status, NOW).unwrap()
}

/// The stored key with this kid.
async fn stored<S: Store + ?Sized>(s: &Arc<S>, kid: &str) -> Option<KeyRecord> {
    s.keys().await.unwrap().into_iter().find(|k| k.kid == kid)
}

fn assert_same(a: &KeyRecord, b: &KeyRecord) {
    assert_eq!(
        (
            &a.kid,
            a.alg,
            a.status,
            a.created_at,
            a.status_since,
            a.secret.as_slice()
        ),
        (
            &b.kid,
            b.alg,
            b.status,
            b.created_at,
            b.status_since,
            b.secret.as_slice()
        )
    );
}

pub(super) async fn insert_and_list_keep_secrets<S: Store + ?Sized>(s: &Arc<S>) {
    for (alg, status) in [
        (Algorithm::EdDSA, KeyStatus::Retiring),
        (Algorithm::ES256, KeyStatus::Retired),
        (Algorithm::HS256, KeyStatus::Revoked),
    ] {
        let mut k = record(alg, status);
        k.status_since = NOW.plus(42);
        s.insert_key(&k).await.unwrap();
        assert_same(&stored(s, &k.kid).await.unwrap(), &k);
    }
}

pub(super) async fn duplicate_kid_conflicts<S: Store + ?Sized>(s: &Arc<S>) {
    let k = record(Algorithm::EdDSA, KeyStatus::Retiring);
    s.insert_key(&k).await.unwrap();
    let mut again = record(Algorithm::EdDSA, KeyStatus::Retired);
    again.kid.clone_from(&k.kid);
    let err = s.insert_key(&again).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict("kid")), "{err:?}");
    assert_same(&stored(s, &k.kid).await.unwrap(), &k);
}

pub(super) async fn set_key_status_is_compare_and_set<S: Store + ?Sized>(s: &Arc<S>) {
    use KeyStatus::{Current, Retired, Retiring, Revoked};
    let k = record(Algorithm::EdDSA, Retiring);
    s.insert_key(&k).await.unwrap();
    // A writer that believes the key is in another status changes nothing.
    assert!(
        !s.set_key_status(&k.kid, Current, Retired, NOW.plus(5))
            .await
            .unwrap()
    );
    assert_same(&stored(s, &k.kid).await.unwrap(), &k);
    assert!(
        s.set_key_status(&k.kid, Retiring, Retired, NOW.plus(5))
            .await
            .unwrap()
    );
    let moved = stored(s, &k.kid).await.unwrap();
    assert_eq!((moved.status, moved.status_since), (Retired, NOW.plus(5)));
    // The same change again finds the key moved: only one writer wins it.
    assert!(
        !s.set_key_status(&k.kid, Retiring, Retired, NOW.plus(6))
            .await
            .unwrap()
    );
    assert_eq!(stored(s, &k.kid).await.unwrap().status_since, NOW.plus(5));
    assert!(
        !s.set_key_status("no-such-kid", Retiring, Revoked, NOW)
            .await
            .unwrap()
    );
}

pub(super) async fn replace_key_secret_is_compare_and_set<S: Store + ?Sized>(s: &Arc<S>) {
    let k = record(Algorithm::EdDSA, KeyStatus::Retiring);
    s.insert_key(&k).await.unwrap();
    let (first, second) = (b"sealed once".as_slice(), b"sealed twice".as_slice());
    assert!(
        s.replace_key_secret(&k.kid, &k.secret, first)
            .await
            .unwrap()
    );
    assert_eq!(stored(s, &k.kid).await.unwrap().secret.as_slice(), first);
    // A writer that read the old bytes loses: the secret it expected is gone.
    assert!(
        !s.replace_key_secret(&k.kid, &k.secret, second)
            .await
            .unwrap()
    );
    assert_eq!(stored(s, &k.kid).await.unwrap().secret.as_slice(), first);
    assert!(
        !s.replace_key_secret("no-such-kid", first, second)
            .await
            .unwrap()
    );
    let after = stored(s, &k.kid).await.unwrap();
    assert_eq!((after.status, after.alg), (k.status, k.alg));
}

/// For `current` and then `next`: racers inserting a key of that status together, one wins.
pub(super) async fn one_key_per_status_under_race<S: Store + ?Sized>(s: &Arc<S>) {
    for status in [KeyStatus::Current, KeyStatus::Next] {
        // On a shared store such a key may already exist: move it on so the race is real.
        for k in s.keys().await.unwrap() {
            if k.status == status {
                let on = if status == KeyStatus::Current {
                    KeyStatus::Retiring
                } else {
                    KeyStatus::Revoked
                };
                assert!(s.set_key_status(&k.kid, status, on, NOW).await.unwrap());
            }
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
        let mut tasks = Vec::new();
        for _ in 0..RACERS {
            let (s, barrier) = (Arc::clone(s), Arc::clone(&barrier));
            let k = record(Algorithm::EdDSA, status);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let inserted = s.insert_key_if_vacant(&k).await.unwrap();
                (k.kid, inserted)
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            let (kid, inserted) = task.await.unwrap();
            if inserted {
                winners.push(kid);
            }
        }
        assert_eq!(winners.len(), 1, "{status:?}: {winners:?}");
        let holders: Vec<String> = s
            .keys()
            .await
            .unwrap()
            .into_iter()
            .filter(|k| k.status == status)
            .map(|k| k.kid)
            .collect();
        assert_eq!(holders, winners, "{status:?}");
        let late = record(Algorithm::EdDSA, status);
        assert!(!s.insert_key_if_vacant(&late).await.unwrap());
        assert!(stored(s, &late.kid).await.is_none());
    }
}
