//! Signing keys sealed at rest, at the server's startup: legacy plain keys are sealed once
//! even by instances starting together, and a KEK that opens nothing never leads to a new key
//! made over the stored ones.

use std::sync::Arc;

use tessera_core::jose::Algorithm;
use tessera_core::keys::kek::{self, Kek};
use tessera_core::keys::{KeyRecord, KeyRing, KeyStatus};
use tessera_core::password::PasswordHasher;
use tessera_core::time::{Clock, ManualClock, SystemClock, UnixTime};
use tessera_server::keys::{self, ApplyError};
use tessera_server::service::{self, Actor};
use tessera_server::{AppState, ServerConfig, StartupError};
use tessera_store::memory::MemoryStore;
use tessera_store::{KeyStore as _, Store};

async fn start(store: &Arc<MemoryStore>, kek: &Kek) -> Result<AppState, StartupError> {
    start_with(
        store,
        kek,
        Arc::new(SystemClock),
        ServerConfig::new("http://tessera.test"),
    )
    .await
}

async fn start_with(
    store: &Arc<MemoryStore>,
    kek: &Kek,
    clock: Arc<dyn Clock>,
    mut config: ServerConfig,
) -> Result<AppState, StartupError> {
    config.kek = Some(kek.clone());
    AppState::new(
        Arc::clone(store) as Arc<dyn Store>,
        config,
        clock,
        PasswordHasher::with_cost(64, 1).unwrap(),
    )
    .await
}

fn record(alg: Algorithm, status: KeyStatus, at: i64) -> KeyRecord {
    KeyRing::generate_record(alg, status, UnixTime(at)).unwrap()
}

fn snapshot(keys: &[KeyRecord]) -> Vec<(String, KeyStatus, Vec<u8>)> {
    keys.iter()
        .map(|k| (k.kid.clone(), k.status, k.secret.to_vec()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn legacy_plain_keys_are_sealed_once_by_instances_starting_together() {
    let store = Arc::new(MemoryStore::new());
    let plain = [
        record(Algorithm::EdDSA, KeyStatus::Retiring, 1),
        record(Algorithm::ES256, KeyStatus::Current, 2),
        record(Algorithm::HS256, KeyStatus::Revoked, 3),
        record(Algorithm::EdDSA, KeyStatus::Next, 4),
    ];
    for k in &plain {
        store.insert_key(k).await.unwrap();
    }
    let kek = Kek::generate().unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, kek, barrier) = (Arc::clone(&store), kek.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            start(&store, &kek)
                .await
                .map(|s| s.key_ring().current().map(|k| k.kid().to_owned()))
        }));
    }
    for task in tasks {
        let current = task.await.unwrap().expect("every instance starts");
        assert_eq!(current.as_deref(), Some(plain[1].kid.as_str()));
    }
    let stored = store.keys().await.unwrap();
    assert_eq!(stored.len(), plain.len(), "no key added");
    for (s, p) in stored.iter().zip(&plain) {
        assert_eq!((&s.kid, s.status), (&p.kid, p.status));
        assert!(kek::is_sealed(&s.secret), "{} sealed", s.kid);
        assert_eq!(
            kek.open_record(s).unwrap().secret.as_slice(),
            p.secret.as_slice()
        );
    }
    // Idempotent: one more start seals nothing and changes nothing.
    let state = start(&store, &kek).await.unwrap();
    assert_eq!(state.seal_legacy_keys().await.unwrap(), 0);
    assert_eq!(snapshot(&store.keys().await.unwrap()), snapshot(&stored));
}

#[tokio::test]
async fn a_kek_that_opens_nothing_never_makes_a_key_over_the_stored_ones() {
    let right = Kek::generate().unwrap();
    let wrong = Kek::generate().unwrap();
    // Every key revoked: "no current key, make one" is exactly what must not happen here.
    let store = Arc::new(MemoryStore::new());
    let revoked = right
        .seal_record(&record(Algorithm::EdDSA, KeyStatus::Revoked, 1))
        .unwrap();
    store.insert_key(&revoked).await.unwrap();
    let before = snapshot(&store.keys().await.unwrap());
    let err = start(&store, &wrong).await.err().expect("refused");
    assert!(matches!(err, StartupError::Kek(_)), "{err:?}");
    assert!(err.to_string().contains("Refusing to start"), "{err}");
    assert_eq!(snapshot(&store.keys().await.unwrap()), before);

    // A current key that does not open: refused as well; the right KEK then starts.
    let current = right
        .seal_record(&record(Algorithm::EdDSA, KeyStatus::Current, 2))
        .unwrap();
    store.insert_key(&current).await.unwrap();
    let before = snapshot(&store.keys().await.unwrap());
    assert!(matches!(
        start(&store, &wrong).await,
        Err(StartupError::Kek(_))
    ));
    assert_eq!(snapshot(&store.keys().await.unwrap()), before);
    let state = start(&store, &right).await.unwrap();
    assert_eq!(state.key_ring().current().unwrap().kid(), current.kid);

    // Re-wrapping moves every key to the new KEK; the old one then refuses to start.
    let newer = Kek::generate().unwrap();
    assert_eq!(state.rewrap_keys(&newer).await.unwrap(), 2);
    assert!(matches!(
        start(&store, &right).await,
        Err(StartupError::Kek(_))
    ));
    assert!(start(&store, &newer).await.is_ok());
}

#[tokio::test]
async fn a_wrong_kek_seals_no_plain_key_beside_sealed_ones() {
    let right = Kek::generate().unwrap();
    let wrong = Kek::generate().unwrap();
    // Half-migrated: one key already sealed under the store's KEK, one still plain.
    let store = Arc::new(MemoryStore::new());
    let sealed = right
        .seal_record(&record(Algorithm::EdDSA, KeyStatus::Current, 1))
        .unwrap();
    let plain = record(Algorithm::ES256, KeyStatus::Retiring, 2);
    store.insert_key(&sealed).await.unwrap();
    store.insert_key(&plain).await.unwrap();
    let before = snapshot(&store.keys().await.unwrap());

    let err = start(&store, &wrong).await.err().expect("refused");
    assert!(matches!(err, StartupError::Kek(_)), "{err:?}");
    assert_eq!(
        snapshot(&store.keys().await.unwrap()),
        before,
        "the plain key is not sealed under the wrong KEK"
    );

    // The right KEK then seals it, under itself.
    start(&store, &right).await.unwrap();
    let stored = store.keys().await.unwrap();
    let migrated = stored.iter().find(|k| k.kid == plain.kid).unwrap();
    assert!(kek::is_sealed(&migrated.secret));
    assert_eq!(
        right.open_record(migrated).unwrap().secret.as_slice(),
        plain.secret.as_slice()
    );
}

#[tokio::test]
async fn an_instance_whose_kek_no_longer_opens_the_store_publishes_no_key() {
    let store = Arc::new(MemoryStore::new());
    let (old, new) = (Kek::generate().unwrap(), Kek::generate().unwrap());
    let clock = Arc::new(ManualClock::new(UnixTime(1_700_000_000)));
    let mut config = ServerConfig::new("http://tessera.test");
    config.key_rotation_secs = 10;
    let running = start_with(&store, &old, clock.clone(), config.clone())
        .await
        .unwrap();
    // Re-wrapped while `running` still holds the old KEK; then its schedule is due to publish.
    assert_eq!(running.rewrap_keys(&new).await.unwrap(), 1);
    clock.advance(10);
    let before = snapshot(&store.keys().await.unwrap());

    let err = keys::run_schedule(&running).await.unwrap_err();
    assert!(matches!(err, ApplyError::ForeignKek(_)), "{err:?}");
    let err = service::rotate_keys(&running, &Actor::Operator, true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("changes no signing key"), "{err}");
    assert_eq!(
        snapshot(&store.keys().await.unwrap()),
        before,
        "no key sealed under the old KEK"
    );
    // It keeps signing with the key it loaded, which the re-wrapped store still holds.
    let signing = running.key_ring().current().unwrap().kid().to_owned();
    assert_eq!(before[0].0, signing);

    // Restarted with the new KEK, the schedule runs again.
    let restarted = start_with(&store, &new, clock, config).await.unwrap();
    assert!(keys::run_schedule(&restarted).await.unwrap().is_some());
    for stored in store.keys().await.unwrap() {
        new.open_record(&stored).unwrap();
    }
}
