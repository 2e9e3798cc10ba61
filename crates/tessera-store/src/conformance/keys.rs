//! Checks of [`crate::KeyStore`].

use std::sync::Arc;

use tessera_core::jose::Algorithm;
use tessera_core::keys::{KeyRecord, KeyRing, KeyStatus};

use super::NOW;
use crate::{Store, StoreError};

/// Racers in the first-key check.
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
        (&a.kid, a.alg, a.status, a.created_at, a.secret.as_slice()),
        (&b.kid, b.alg, b.status, b.created_at, b.secret.as_slice())
    );
}

pub(super) async fn insert_and_list_keep_secrets<S: Store + ?Sized>(s: &Arc<S>) {
    for (alg, status) in [
        (Algorithm::EdDSA, KeyStatus::Next),
        (Algorithm::ES256, KeyStatus::Retiring),
        (Algorithm::HS256, KeyStatus::Revoked),
    ] {
        let k = record(alg, status);
        s.insert_key(&k).await.unwrap();
        assert_same(&stored(s, &k.kid).await.unwrap(), &k);
    }
}

pub(super) async fn duplicate_kid_conflicts<S: Store + ?Sized>(s: &Arc<S>) {
    let k = record(Algorithm::EdDSA, KeyStatus::Next);
    s.insert_key(&k).await.unwrap();
    let mut again = record(Algorithm::EdDSA, KeyStatus::Retiring);
    again.kid.clone_from(&k.kid);
    let err = s.insert_key(&again).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict("kid")), "{err:?}");
    assert_same(&stored(s, &k.kid).await.unwrap(), &k);
}

pub(super) async fn set_key_status<S: Store + ?Sized>(s: &Arc<S>) {
    let k = record(Algorithm::EdDSA, KeyStatus::Next);
    s.insert_key(&k).await.unwrap();
    assert!(s.set_key_status(&k.kid, KeyStatus::Retiring).await.unwrap());
    assert_eq!(stored(s, &k.kid).await.unwrap().status, KeyStatus::Retiring);
    assert!(
        !s.set_key_status("no-such-kid", KeyStatus::Revoked)
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

pub(super) async fn first_key_is_inserted_once_under_race<S: Store + ?Sized>(s: &Arc<S>) {
    // On a shared store a current key may already exist: retire it so the race is real.
    for k in s.keys().await.unwrap() {
        if k.status == KeyStatus::Current {
            assert!(s.set_key_status(&k.kid, KeyStatus::Retiring).await.unwrap());
        }
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let (s, barrier) = (Arc::clone(s), Arc::clone(&barrier));
        let k = record(Algorithm::EdDSA, KeyStatus::Current);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let inserted = s.insert_first_key(&k).await.unwrap();
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
    assert_eq!(winners.len(), 1, "{winners:?}");
    let current: Vec<String> = s
        .keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.status == KeyStatus::Current)
        .map(|k| k.kid)
        .collect();
    assert_eq!(current, winners);
    let late = record(Algorithm::EdDSA, KeyStatus::Current);
    assert!(!s.insert_first_key(&late).await.unwrap());
    assert!(stored(s, &late.kid).await.is_none());
}
