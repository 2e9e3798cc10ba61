//! DPoP and CORS through the real binary: a proof spent at one instance is refused at
//! another sharing Redis (the replay markers live there), also when both are sent at the
//! same moment; `--cors-origin` from the flag, the environment and the config file, and
//! origins that could never be exact refused at start.

use crate::common;

use std::sync::Barrier;

use common::{Deployment, ISSUER, PASSWORD, Server, register, tessera};
use tessera_core::dpop::{ProofClaims, sign_proof};
use tessera_core::jose::{Algorithm, SigningKey};
use tessera_core::opaque::random_id;
use tessera_core::time::{Clock as _, SystemClock};

fn proof(key: &SigningKey, method: &str, path: &str, token: Option<&str>) -> String {
    let jti = random_id().unwrap();
    sign_proof(
        key,
        &ProofClaims {
            jti: &jti,
            htm: method,
            htu: &format!("{ISSUER}{path}"),
            iat: SystemClock.now(),
            access_token: token,
            nonce: None,
        },
    )
    .unwrap()
}

fn userinfo(server: &Server, token: &str, proof: &str) -> u16 {
    let auth = format!("DPoP {token}");
    server
        .get("/v1/userinfo", &[("Authorization", &auth), ("DPoP", proof)])
        .status
}

#[test]
fn a_proof_spent_at_one_instance_is_refused_at_another_sharing_redis() {
    let Some(deployment) = Deployment::new(true) else {
        return;
    };
    let servers = deployment.start(2, &[]);
    let (a, b) = (&servers[0], &servers[1]);
    register(a, "alice", PASSWORD);
    let key = SigningKey::generate(Algorithm::EdDSA, "k".into()).unwrap();
    let login = proof(&key, "POST", "/oauth/token", None);
    let body = format!(
        "grant_type=password&username=alice&password={}",
        PASSWORD.replace(' ', "+")
    );
    let resp = a.request(
        "POST",
        "/oauth/token",
        &[("DPoP", &login)],
        Some(("application/x-www-form-urlencoded", &body)),
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.json()["token_type"], "DPoP");
    let token = resp.json()["access_token"].as_str().unwrap().to_owned();
    // The login proof itself cannot be replayed at the other instance.
    let again = b.request(
        "POST",
        "/oauth/token",
        &[("DPoP", &login)],
        Some(("application/x-www-form-urlencoded", &body)),
    );
    assert_eq!(again.status, 400, "{again:?}");

    let p = proof(&key, "GET", "/v1/userinfo", Some(&token));
    assert_eq!(userinfo(a, &token, &p), 200);
    assert_eq!(userinfo(b, &token, &p), 401);
    assert_eq!(userinfo(a, &token, &p), 401);

    // One proof sent to both instances at the same moment: exactly one answer is 200.
    for _ in 0..5 {
        let p = proof(&key, "GET", "/v1/userinfo", Some(&token));
        let barrier = Barrier::new(2);
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = [a, b]
                .into_iter()
                .map(|s| {
                    let (barrier, token, p) = (&barrier, &token, &p);
                    scope.spawn(move || {
                        barrier.wait();
                        userinfo(s, token, p)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = statuses.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [200, 401], "{statuses:?}");
    }
}

fn preflight_origin(server: &Server, origin: &str) -> Option<String> {
    let resp = server.request(
        "OPTIONS",
        "/oauth/token",
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
        ],
        None,
    );
    resp.header("access-control-allow-origin")
        .map(str::to_owned)
}

#[test]
fn cors_origins_come_from_the_flag_the_environment_or_the_config_file() {
    let flag = Server::start(|cmd, addr| {
        cmd.args(["--listen", &addr.to_string(), "--store", "memory:"])
            .args([
                "--cors-origin",
                "https://a.example",
                "--cors-origin",
                "https://b.example/",
            ]);
    });
    assert_eq!(
        preflight_origin(&flag, "https://a.example").as_deref(),
        Some("https://a.example")
    );
    assert_eq!(
        preflight_origin(&flag, "https://b.example").as_deref(),
        Some("https://b.example")
    );
    assert_eq!(preflight_origin(&flag, "https://c.example"), None);
    let env = Server::start(|cmd, addr| {
        cmd.args(["--listen", &addr.to_string(), "--store", "memory:"])
            .env(
                "TESSERA_CORS_ORIGIN",
                "https://c.example,http://localhost:5173",
            );
    });
    assert_eq!(
        preflight_origin(&env, "http://localhost:5173").as_deref(),
        Some("http://localhost:5173")
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        "store = \"memory:\"\ncors_origins = [\"https://d.example\"]\n",
    )
    .unwrap();
    let file = Server::start(|cmd, addr| {
        cmd.args(["--listen", &addr.to_string(), "--config"])
            .arg(&config);
    });
    assert_eq!(
        preflight_origin(&file, "https://d.example").as_deref(),
        Some("https://d.example")
    );
    assert_eq!(preflight_origin(&file, "https://a.example"), None);
}

#[test]
fn origins_that_cannot_be_exact_are_refused_at_start() {
    for bad in [
        "*",
        "null",
        "https://app.example/spa",
        "app.example",
        "https://u@app.example",
    ] {
        let out = tessera()
            .args(["serve", "--store", "memory:", "--cors-origin", bad])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("CORS origin"), "{bad}: {stderr}");
    }
}
