//! Resource-server benchmark: what `Verifier::verify` costs per request, for a token never
//! seen before and for the same token again, and how long a revocation takes to reach a
//! verifier that follows Tessera's revocation stream.
//!
//! Run: `cargo bench -p tessera-verify --bench verify`. Tessera runs in this process
//! (`tessera_server::app` over a `MemoryStore`, served on a loopback socket with `axum::serve`)
//! and the verifier reaches it over HTTP as a resource server would, so the revocation delay
//! is the real path: the revocation flow records it and broadcasts it, the stream carries it
//! as a server-sent event, the verifier applies it. It is measured from the start of the
//! revoking call until `verify` refuses the token.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::client::{NewClient, Scope};
use tessera_core::password::PasswordHasher;
use tessera_core::time::SystemClock;
use tessera_server::service::{FIRST_PARTY_CLIENT, issue_access, register_client, revoke_token};
use tessera_server::{AppState, ServerConfig, app};
use tessera_store::memory::MemoryStore;
use tessera_verify::{Verifier, VerifyError};

const ISSUER: &str = "http://bench.test";
/// Verifications per row of the per-request table.
const VERIFICATIONS: usize = 20_000;
/// Revocations timed.
const REVOCATIONS: usize = 200;
/// A revocation not refused by then is a failure, not a sample.
const REVOCATION_TIMEOUT: Duration = Duration::from_secs(5);

/// One row: sample count, median, p99, max and, when given, the sequential rate.
fn row(name: &str, mut samples: Vec<Duration>, total: Option<Duration>) {
    samples.sort_unstable();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let rate = total.map_or_else(String::new, |t| {
        format!("{:.0}/s", samples.len() as f64 / t.as_secs_f64())
    });
    println!(
        "| {name:<42} | {:>6} | {:>9.1?} | {:>9.1?} | {:>9.1?} | {rate:>9} |",
        samples.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
}

/// Tessera on a loopback port, as `tessera serve` would run it over a memory store.
async fn tessera() -> (AppState, SocketAddr) {
    let hasher = PasswordHasher::with_cost(8, 1).unwrap();
    let state = AppState::new(
        Arc::new(MemoryStore::new()),
        ServerConfig::new(ISSUER),
        Arc::new(SystemClock),
        hasher,
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    (state, addr)
}

/// A verifier for the issuer's own audience, following `addr` with a client made for it.
async fn verifier(state: &AppState, addr: SocketAddr) -> Verifier {
    let (client, secret) = register_client(
        state,
        NewClient {
            name: "bench resource server".into(),
            scope: Scope::parse("read").unwrap(),
            redirect_uris: Vec::new(),
            public: false,
            first_party: false,
            dpop: false,
        },
        &tessera_server::service::Actor::Operator,
    )
    .await
    .unwrap();
    Verifier::builder(ISSUER)
        .server(format!("http://{addr}"))
        .audience(ISSUER)
        .client(client.id.as_str(), secret.unwrap().expose_secret())
        .start()
        .await
        .unwrap()
}

/// An access token for its own user and session, as a password grant would issue.
fn token(state: &AppState, n: usize) -> String {
    let user = format!("user-{n}");
    let sid = format!("sid-{n}");
    issue_access(
        state,
        &user,
        Some(&user),
        Some(&sid),
        Some("read"),
        FIRST_PARTY_CLIENT,
        None,
    )
    .unwrap()
}

/// Times `verify` once per token; every call must accept.
fn verifications(verifier: &Verifier, tokens: &[&str]) -> (Vec<Duration>, Duration) {
    let mut samples = Vec::with_capacity(tokens.len());
    let start = Instant::now();
    for token in tokens {
        let t = Instant::now();
        let verified = verifier.verify(token);
        samples.push(t.elapsed());
        assert!(verified.is_ok(), "{verified:?}");
    }
    (samples, start.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (state, addr) = tessera().await;
    let verifier = verifier(&state, addr).await;
    println!(
        "tessera-verify benchmark ({} CPUs): Tessera in process on {addr}, memory store",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| {:<42} | {:>6} | {:>9} | {:>9} | {:>9} | {:>9} |",
        "", "n", "median", "p99", "max", "rate"
    );
    println!(
        "|{:-<44}|{:-<8}|{:-<11}|{:-<11}|{:-<11}|{:-<11}|",
        "", "", "", "", "", ""
    );

    // Minted before the clock starts: signing is the issuer's cost, not the verifier's.
    let fresh: Vec<String> = (0..VERIFICATIONS).map(|n| token(&state, n)).collect();
    let fresh: Vec<&str> = fresh.iter().map(String::as_str).collect();
    let (samples, total) = verifications(&verifier, &fresh);
    row("verify, cold (a token never seen)", samples, Some(total));
    let reused = vec![fresh[0]; VERIFICATIONS];
    let (samples, total) = verifications(&verifier, &reused);
    row(
        "verify, re-used (the same token again)",
        samples,
        Some(total),
    );

    let mut delays = Vec::with_capacity(REVOCATIONS);
    for n in 0..REVOCATIONS {
        let jwt = token(&state, VERIFICATIONS + n);
        assert!(verifier.verify(&jwt).is_ok());
        let start = Instant::now();
        revoke_token(&state, &jwt, None).await.unwrap();
        loop {
            match verifier.verify(&jwt) {
                Err(VerifyError::Revoked) => break,
                Ok(_) => {
                    assert!(
                        start.elapsed() < REVOCATION_TIMEOUT,
                        "revocation #{n} not refused within {REVOCATION_TIMEOUT:?}"
                    );
                    tokio::task::yield_now().await;
                }
                Err(e) => panic!("revocation #{n}: {e}"),
            }
        }
        delays.push(start.elapsed());
    }
    row("revocation delay, Tessera → verifier", delays, None);
}
