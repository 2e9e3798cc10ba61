#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The key compromise drill, on real processes: two `tessera serve` instances over one
//! PostgreSQL store, keys rotated and revoked with the `tessera keys` CLI.
//!
//! Rotation publishes the next key before it signs and keeps the old one verifying; an
//! emergency revocation makes every token signed by the key fail on every instance at once
//! (the revocation travels on the store's feed), and signing moves to another key.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    PASSWORD, Server, TEST_KEK, password_grant, random_hex, register, skip, start_servers, tessera,
    userinfo_bearer,
};

const ISSUER: &str = "http://tessera.test";

fn postgres_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn postgres_answers(url: &str) -> bool {
    let host_port = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432");
    std::net::TcpStream::connect_timeout(&host_port.parse().unwrap(), Duration::from_secs(2))
        .is_ok()
}

/// Drops the test's schema however the test ends.
struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "test",
                "-qc",
                &format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0),
            ])
            .output();
    }
}

fn kid_of(jwt: &str) -> String {
    let (header, _) = tessera_core::jose::decode_unverified_dangerously(jwt).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn keys_cli(ns: &str, args: &[&str]) -> serde_json::Value {
    let out = tessera()
        .env("TESSERA_KEK", TEST_KEK)
        .arg("keys")
        .args(args)
        .args(["--store", &postgres_url(), "--namespace", ns])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tessera keys {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

fn jwks_kids(server: &Server) -> Vec<String> {
    let keys = server.get("/.well-known/jwks.json", &[]).json()["keys"].clone();
    keys.as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `check` until it holds; returns how long it took.
fn within(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    start.elapsed()
}

/// Two `tessera serve` over one fresh PostgreSQL schema (named `<prefix>_<random>`, dropped
/// when the returned guard goes), with `extra` flags: the store URL, the namespace, the guard
/// and the servers; `None` (after saying why) when PostgreSQL is unreachable.
fn two_instances(prefix: &str, extra: &[&str]) -> Option<(String, String, Schema, Vec<Server>)> {
    let url = postgres_url();
    if !postgres_answers(&url) {
        skip(&format!("PostgreSQL unreachable at {url}"));
        return None;
    }
    let ns = format!("{prefix}_{}", random_hex(8));
    let schema = Schema(ns.clone());
    let servers = start_servers(2, |cmd, addr, _| {
        cmd.env("TESSERA_KEK", TEST_KEK)
            .args(["--listen", &addr.to_string(), "--issuer", ISSUER])
            .args(["--store", &url, "--namespace", &ns])
            .args(extra);
    });
    Some((url, ns, schema, servers))
}

#[test]
fn rotation_publishes_first_and_revocation_kills_a_key_everywhere() {
    let Some((url, ns, _schema, servers)) = two_instances("kd", &[]) else {
        return;
    };
    let (a, b) = (&servers[0], &servers[1]);
    for s in &servers {
        s.wait_readiness(&["ready"], Duration::from_secs(10));
    }
    register(a, "alice", PASSWORD);
    let (jwt1, _) = password_grant(a, "alice", PASSWORD);
    let k1 = kid_of(&jwt1);

    // Phase 1: the next key is published (both instances), but does not sign yet.
    let k2 = keys_cli(&ns, &["rotate"])["published_next"]
        .as_str()
        .unwrap()
        .to_owned();
    for s in [a, b] {
        within(Duration::from_secs(3), "next key published", || {
            jwks_kids(s).contains(&k2)
        });
    }
    assert_eq!(
        kid_of(&password_grant(b, "alice", PASSWORD).0),
        k1,
        "the next key must not sign yet"
    );
    let early = tessera()
        .env("TESSERA_KEK", TEST_KEK)
        .arg("keys")
        .arg("rotate")
        .args(["--store", &url, "--namespace", &ns])
        .output()
        .unwrap();
    assert!(
        !early.status.success(),
        "promoting a key published seconds ago needs --force"
    );

    // Phase 2: the next key signs; the old one keeps verifying as `retiring`.
    assert_eq!(
        keys_cli(&ns, &["rotate", "--force"])["current"]
            .as_str()
            .unwrap(),
        k2
    );
    within(Duration::from_secs(3), "new key signs", || {
        kid_of(&password_grant(a, "alice", PASSWORD).0) == k2
    });
    let (jwt2, _) = password_grant(b, "alice", PASSWORD);
    assert_eq!(kid_of(&jwt2), k2);
    for s in [a, b] {
        assert_eq!(
            userinfo_bearer(s, &jwt1).status,
            200,
            "retiring key still verifies"
        );
        assert!(jwks_kids(s).contains(&k1));
    }

    // Emergency: revoke the retiring key. Its tokens die on both instances at once.
    keys_cli(&ns, &["revoke", &k1]);
    for s in [a, b] {
        let took = within(Duration::from_millis(500), "revoked key refused", || {
            userinfo_bearer(s, &jwt1).status == 401
        });
        eprintln!("key revocation seen after {took:?}");
        assert_eq!(
            userinfo_bearer(s, &jwt2).status,
            200,
            "other keys unaffected"
        );
        within(Duration::from_secs(3), "revoked key unpublished", || {
            !jwks_kids(s).contains(&k1)
        });
    }

    // Emergency on the signing key itself: another key takes over signing.
    let k3 = keys_cli(&ns, &["revoke", &k2]);
    assert_eq!(k3["revoked"].as_str().unwrap(), k2);
    for s in [a, b] {
        within(
            Duration::from_millis(500),
            "revoked signing key refused",
            || userinfo_bearer(s, &jwt2).status == 401,
        );
        within(Duration::from_secs(3), "signing moved on", || {
            kid_of(&password_grant(s, "alice", PASSWORD).0) != k2
        });
    }
    let (jwt3, _) = password_grant(a, "alice", PASSWORD);
    assert_ne!(kid_of(&jwt3), k1);
    assert_eq!(userinfo_bearer(b, &jwt3).status, 200);
}

/// `--key-rotation 4s`: the instances publish, promote and agree by themselves. Every token
/// either signs verifies on both, and neither ever publishes more than three keys. (Tokens
/// live 10 minutes, so within the test the demoted key stays `retiring`, which holds further
/// promotions back: the schedule's fourth rule.)
#[test]
fn two_instances_rotate_by_themselves_on_a_short_schedule() {
    let Some((url, ns, _schema, servers)) = two_instances("kr", &["--key-rotation", "4s"]) else {
        return;
    };
    for s in &servers {
        s.wait_readiness(&["ready"], Duration::from_secs(10));
    }
    // The schedule, as `keys list` shows it.
    let listed = || -> Vec<serde_json::Value> {
        let out = tessera()
            .env("TESSERA_KEK", TEST_KEK)
            .args(["keys", "list", "--key-rotation", "4s"])
            .args(["--store", &url, "--namespace", &ns])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // The first signing key, read from the store before any token: on a loaded machine the
    // first promotion (4 s in) may come before the first token is issued, and the next one
    // waits for the first key to retire (10 minutes).
    let first_key = listed()
        .into_iter()
        .find(|k| k["status"] == "retiring")
        .or_else(|| listed().into_iter().find(|k| k["status"] == "current"))
        .expect("a signing key")["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    register(&servers[0], "alice", PASSWORD);
    let mut kids = vec![first_key];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) && kids.len() < 2 {
        for (i, signer) in servers.iter().enumerate() {
            let (jwt, _) = password_grant(signer, "alice", PASSWORD);
            let other = &servers[1 - i];
            assert_eq!(
                userinfo_bearer(other, &jwt).status,
                200,
                "a token signed by instance {i} with key {} is refused by the other",
                kid_of(&jwt)
            );
            if !kids.contains(&kid_of(&jwt)) {
                kids.push(kid_of(&jwt));
            }
            for s in &servers {
                let published = jwks_kids(s);
                assert!(published.len() <= 3, "{published:?}");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(kids.len(), 2, "no scheduled promotion within 30 s");

    // The first key retiring (until its tokens have expired), the second signing, and its
    // successor already published.
    let listed = listed();
    let status_of = |kid: &str| {
        listed
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap_or_else(|| panic!("{kid} not listed: {listed:?}"))
            .clone()
    };
    let (first, second) = (status_of(&kids[0]), status_of(&kids[1]));
    assert_eq!(first["status"], "retiring");
    assert_eq!(second["status"], "current");
    // Retires once its last token (10 min + 30 s leeway) has expired; rotates 4 s in.
    let since = |k: &serde_json::Value| k["status_since"].as_i64().unwrap();
    assert_eq!(
        first["next_change_at"].as_i64().unwrap(),
        since(&first) + 630
    );
    assert_eq!(
        second["next_change_at"].as_i64().unwrap(),
        since(&second) + 4
    );
}
