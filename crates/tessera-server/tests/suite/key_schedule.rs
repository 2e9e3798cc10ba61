//! The server's own key rotation schedule (`keys::run_schedule`), driven by a manual clock:
//! on one instance, and on two instances over one PostgreSQL store racing every step — where
//! neither may ever sign with a key the other cannot verify, and the JWKS never holds more than
//! three keys.
//!
//! The PostgreSQL test uses `TESSERA_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`) in a fresh random schema, dropped afterwards; it
//! skips when the server is unreachable, unless `CI=true`.

use std::collections::BTreeSet;
use std::sync::Arc;

use tessera_core::keys::KeyStatus;
use tessera_core::keys::kek::Kek;
use tessera_core::keys::lifecycle::Upkeep;
use tessera_core::opaque::{OpaqueToken, TokenKind};
use tessera_core::password::PasswordHasher;
use tessera_core::time::{ManualClock, UnixTime};
use tessera_server::{AppState, ServerConfig, auth, keys, service};
use tessera_store::StoreError;
use tessera_store::postgres::PostgresStore;

use crate::common::{ISSUER, TestServer};

/// Rotation every 100 s (a next key published 50 s before); tokens live 60 s plus 30 s of
/// leeway, so a demoted key retires 90 s later.
fn short_schedule(c: &mut ServerConfig) {
    c.key_rotation_secs = 100;
    c.access_ttl_secs = 60;
    c.leeway_secs = 30;
}

fn published(state: &AppState) -> usize {
    state.key_ring().jwks()["keys"].as_array().unwrap().len()
}

/// A token signed now by `signer`, which `verifier` must accept.
async fn assert_verifies(signer: &AppState, verifier: &AppState, when: &str) {
    let token =
        service::issue_access(signer, "u1", Some("alice"), None, None, "tessera", None).unwrap();
    if let Err(e) = auth::verify_jwt(verifier, &token).await {
        panic!("{when}: a token signed by one instance is refused by the other: {e:?}");
    }
}

#[tokio::test]
async fn the_server_rotates_and_retires_its_keys_on_schedule() {
    let s = TestServer::with_config(short_schedule).await;
    let first = s.state.key_ring().current().unwrap().kid().to_owned();
    let mut outcomes = Vec::new();
    let mut old_tokens: Vec<(String, UnixTime)> = Vec::new();
    for _ in 0..1_000 {
        s.advance(1);
        if let Some(outcome) = keys::run_schedule(&s.state).await.unwrap() {
            outcomes.push(outcome);
        }
        assert!(published(&s.state) <= 3);
        // Every token signed so far verifies until it expires, whatever rotated meanwhile.
        let token =
            service::issue_access(&s.state, "u1", None, None, None, "tessera", None).unwrap();
        old_tokens.push((token, s.state.now().plus(60)));
        old_tokens.retain(|(_, exp)| exp.0 > s.state.now().0);
        for (token, _) in &old_tokens {
            auth::verify_jwt(&s.state, token).await.unwrap();
        }
    }
    let promotions = outcomes
        .iter()
        .filter(|o| matches!(o, Upkeep::Promoted { .. }))
        .count();
    let retirements = outcomes
        .iter()
        .filter(|o| matches!(o, Upkeep::Retired { .. }))
        .count();
    // Promoted at +100, +200, … +1000; each demoted key retires 90 s after its demotion.
    assert_eq!((promotions, retirements), (10, 9), "{outcomes:?}");
    let stored = s.state.store().keys().await.unwrap();
    let first_now = stored.iter().find(|k| k.kid == first).unwrap();
    assert_eq!(first_now.status, KeyStatus::Retired);
    assert!(s.state.key_ring().verifier(&first).is_none());
}

/// A fresh schema's store, or `None` (skipped) when PostgreSQL is unreachable outside CI.
async fn postgres(schema: &str) -> Option<PostgresStore> {
    let url = std::env::var("TESSERA_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    match PostgresStore::connect(&url, schema).await {
        Ok(store) => Some(store),
        Err(StoreError::Unavailable(e)) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping: PostgreSQL unreachable at {url}: {e}");
            None
        }
        Err(e) => panic!("PostgreSQL at {url}: {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_over_postgres_agree_on_every_scheduled_change() {
    let hex = OpaqueToken::generate(TokenKind::Session)
        .unwrap()
        .hash()
        .to_hex();
    let schema = format!("tessera_t_{}", &hex[..16]);
    let Some(cleanup) = postgres(&schema).await else {
        return;
    };
    // On its own task, so a failed assertion is caught rather than skipping the cleanup.
    let outcome = tokio::spawn(race_the_schedule(schema)).await;
    cleanup.drop_schema().await.expect("drop the test schema");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn race_the_schedule(schema: String) {
    let clock = Arc::new(ManualClock::new(UnixTime(1_700_000_000)));
    let kek = Kek::generate().unwrap();
    let mut instances = Vec::new();
    for _ in 0..2 {
        // Each instance its own connection pool, as two processes would have.
        let store = Arc::new(postgres(&schema).await.unwrap());
        let mut config = ServerConfig::new(ISSUER);
        short_schedule(&mut config);
        config.kek = Some(kek.clone());
        let hasher = PasswordHasher::with_cost(64, 1).unwrap();
        let state = AppState::new(store, config, clock.clone(), hasher)
            .await
            .unwrap();
        instances.push(state);
    }
    let (a, b) = (&instances[0], &instances[1]);
    let mut changes = Vec::new();
    let mut signing_keys = BTreeSet::new();
    for step in 0..400 {
        clock.advance(5);
        // Both run the schedule at once, as their maintenance ticks would.
        let (ra, rb) = tokio::join!(keys::run_schedule(a), keys::run_schedule(b));
        let won: Vec<Upkeep> = [ra.unwrap(), rb.unwrap()].into_iter().flatten().collect();
        assert!(
            won.len() <= 1,
            "step {step}: both instances applied {won:?}"
        );
        changes.extend(won);
        // The loser has not reloaded yet: it signs with what it had, and must still verify
        // what the winner now signs, and be verified by it.
        assert_verifies(a, b, "before reloading").await;
        assert_verifies(b, a, "before reloading").await;
        a.reload_keys().await.unwrap();
        b.reload_keys().await.unwrap();
        assert_verifies(a, b, "after reloading").await;
        assert_verifies(b, a, "after reloading").await;
        for state in [a, b] {
            assert!(
                published(state) <= 3,
                "step {step}: {}",
                state.key_ring().jwks()
            );
            signing_keys.insert(state.key_ring().current().unwrap().kid().to_owned());
        }
    }
    let promotions = changes
        .iter()
        .filter(|c| matches!(c, Upkeep::Promoted { .. }))
        .count();
    // 2,000 simulated seconds, a rotation every 100: nineteen or twenty, depending on where
    // the 5 s steps fall.
    assert!(promotions >= 19, "{changes:?}");
    assert_eq!(signing_keys.len(), promotions + 1);
    let stored = a.store().keys().await.unwrap();
    let count = |status| stored.iter().filter(|k| k.status == status).count();
    assert_eq!(count(KeyStatus::Current), 1);
    assert!(count(KeyStatus::Next) <= 1 && count(KeyStatus::Retiring) <= 1);
    assert!(count(KeyStatus::Retired) >= promotions - 1);
}
