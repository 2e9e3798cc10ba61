//! Runs the shared conformance suite on every backend in this crate, plus the SQLite-only
//! guarantees: durability across reopen, a private file, and rotation atomic across pools.
//!
//! Design decision: each backend gets the very same `run_all`; only what a backend adds beyond
//! the traits (files, several handles on one database) is tested here by hand.

use std::sync::Arc;

use tessera_core::opaque::{OpaqueToken, TokenKind, random_id};
use tessera_core::refresh::RefreshFamily;
use tessera_core::session::{Session, SessionKind, SessionPolicy};
use tessera_core::time::{SystemClock, UnixTime};
use tessera_store::attempts::MemoryAttempts;
use tessera_store::memory::MemoryStore;
use tessera_store::sqlite::SqliteStore;
use tessera_store::{RefreshStore, SessionStore, User, UserStore, conformance};

const NOW: UnixTime = UnixTime(1_700_000_000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    let store = Arc::new(MemoryStore::new());
    let ran = conformance::run_all(Arc::clone(&store)).await;
    assert!(ran >= 30);
    // Again on the same store: the suite must tolerate its own leftovers.
    conformance::run_all(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_attempts_conform() {
    let attempts = Arc::new(MemoryAttempts::new(Arc::new(SystemClock)));
    assert_eq!(conformance::run_attempt_checks(attempts).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("tessera.db"))
            .await
            .unwrap(),
    );
    conformance::run_all(Arc::clone(&store)).await;
    conformance::run_all(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_conforms_as_dyn_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("dyn.db").display());
    let store: Arc<dyn tessera_store::Store> = Arc::new(SqliteStore::open_url(&url).await.unwrap());
    conformance::run_all(store).await;
}

fn family(id: &str) -> RefreshFamily {
    RefreshFamily {
        id: id.to_owned(),
        user_id: "u".into(),
        sid: "s".into(),
        client_id: None,
        scope: None,
        created_at: NOW,
        expires_at: NOW.plus(3600),
        generation: 0,
        rotated_at: None,
        sealed_successor: None,
        revoked_at: None,
        jkt: None,
    }
}

/// Regression guard for durability: whatever a handle acknowledged is found after reopening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reopen_finds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    let user = User {
        id: random_id().unwrap(),
        username: "alice".into(),
        password_hash: "hash".into(),
        is_admin: true,
        created_at: NOW,
        credential_epoch: 0,
        disabled: false,
    };
    let token = OpaqueToken::generate(TokenKind::Session).unwrap();
    let session = Session::new(
        random_id().unwrap(),
        Some(token.hash()),
        user.id.clone(),
        SessionKind::Browser,
        NOW,
        &SessionPolicy::default(),
    );
    let refresh = OpaqueToken::generate(TokenKind::Refresh).unwrap();
    let f = family(&random_id().unwrap());
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store.create_user(&user).await.unwrap();
        store.create_session(&session).await.unwrap();
        store.create_family(&f, &refresh.hash()).await.unwrap();
        store.pool().close().await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.user_by_name("alice").await.unwrap(), Some(user));
    assert_eq!(
        store.session_by_token(&token.hash()).await.unwrap(),
        Some(session)
    );
    assert_eq!(
        store.family_by_token(&refresh.hash()).await.unwrap(),
        Some((f, 0))
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    let _store = SqliteStore::open(&path).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_open_url_rejects_other_schemes() {
    assert!(
        SqliteStore::open_url("postgres://localhost/db")
            .await
            .is_err()
    );
    assert!(SqliteStore::open_url("sqlite://").await.is_err());
}

/// Regression guard for cross-pool atomicity: two independent handles on one file (as two
/// server processes would have) race the same token; exactly one rotates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rotation_is_atomic_across_handles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    let a = Arc::new(SqliteStore::open(&path).await.unwrap());
    let b = Arc::new(SqliteStore::open(&path).await.unwrap());
    conformance::rotation_is_atomic_across_handles(a, b).await;
}
