#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `tessera clients create|list|delete` on the real binary and an embedded store: what is
//! printed, that a secret is printed once and stored only as its hash, and the exit status of
//! refusals.

use crate::common;

use std::path::Path;
use std::process::{Output, Stdio};

use common::tessera;
use tessera_core::client::{ClientId, ClientSecret};
use tessera_store::ClientStore;
use tessera_store::open::DEFAULT_DB_FILE;
use tessera_store::sqlite::SqliteStore;

/// `tessera clients ARGS --data-dir DATA_DIR`, logging at debug level so a test can check that
/// no secret reaches the log.
fn clients(data_dir: &Path, args: &[&str]) -> Output {
    tessera()
        .env("TESSERA_LOG", "debug")
        .arg("clients")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one JSON object a successful command printed.
fn json(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    serde_json::from_str(stdout(out).trim()).unwrap()
}

/// `clients list`, one JSON object per line.
fn list(data_dir: &Path) -> (String, Vec<serde_json::Value>) {
    let out = clients(data_dir, &["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let rows = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (text, rows)
}

/// Every byte the data directory holds (database, WAL, KEK if any).
fn stored_bytes(data_dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn clients_create_list_and_delete_on_an_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    let create = clients(
        data,
        &[
            "create",
            "Billing service",
            "--scope",
            "invoices:write invoices:read",
            "--redirect-uri",
            "https://billing.example/cb",
            "--redirect-uri",
            "http://127.0.0.1:8123/callback",
            "--first-party",
        ],
    );
    let made = json(&create);
    let confidential = made["client_id"].as_str().unwrap().to_owned();
    let secret = made["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tcs_"), "{secret}");
    let hash = ClientSecret::parse(&secret).unwrap().hash();
    assert_eq!(made.as_object().unwrap().len(), 2, "{made}");

    let made = json(&clients(data, &["create", "CLI", "--public", "--dpop"]));
    let public = made["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        made.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["client_id"],
        "a public client has no secret: {made}"
    );
    assert_ne!(public, confidential);

    assert!(!stderr(&create).contains(&secret), "{}", stderr(&create));

    let (text, rows) = list(data);
    assert!(!text.contains(&secret), "the secret is listed: {text}");
    assert!(!text.contains(&hash.to_hex()), "the hash is listed: {text}");
    assert!(!text.contains("secret"), "{text}");
    assert_eq!(rows.len(), 2, "{text}");
    let (c, p) = (&rows[0], &rows[1]);
    assert_eq!(c["client_id"], confidential.as_str());
    assert_eq!(c["name"], "Billing service");
    assert_eq!(c["scope"], "invoices:read invoices:write");
    assert_eq!(
        c["redirect_uris"],
        serde_json::json!([
            "https://billing.example/cb",
            "http://127.0.0.1:8123/callback"
        ])
    );
    assert_eq!(
        (&c["public"], &c["first_party"], &c["dpop"]),
        (&false.into(), &true.into(), &false.into())
    );
    assert!(c["created_at"].as_i64().is_some_and(|t| t > 1_700_000_000));
    assert_eq!(p["client_id"], public.as_str());
    assert_eq!(p["scope"], "");
    assert_eq!(p["redirect_uris"], serde_json::json!([]));
    assert_eq!(
        (&p["public"], &p["first_party"], &p["dpop"]),
        (&true.into(), &false.into(), &true.into())
    );

    // The store holds the secret's hash, never the secret.
    assert!(!contains(&stored_bytes(data), &secret));
    let stored = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = SqliteStore::open(&data.join(DEFAULT_DB_FILE))
                .await
                .unwrap();
            let id = ClientId::parse(&confidential).unwrap();
            store.client(&id).await.unwrap().unwrap()
        });
    assert_eq!(stored.secret_hash, Some(hash));
    assert!(stored.verify_secret(&secret));

    // `token inspect` recognises the secret's kind and checksum.
    let out = tessera()
        .args(["token", "inspect", &secret])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("tessera client secret"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("malformed"), "{}", stdout(&out));

    let deleted = json(&clients(data, &["delete", &confidential]));
    assert_eq!(deleted["deleted"], confidential.as_str());
    let (text, rows) = list(data);
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(rows[0]["client_id"], public.as_str());

    let again = clients(data, &["delete", &confidential]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(stderr(&again).contains("no client"), "{}", stderr(&again));
}

#[test]
fn clients_delete_of_an_unknown_or_malformed_id_fails_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    for id in [
        "AAAAAAAAAAAAAAAAAAAAAA",
        "-starts-with-a-hyphen",
        "not/an id",
    ] {
        let out = clients(dir.path(), &["delete", id]);
        assert_eq!(out.status.code(), Some(1), "{id}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{id}: {}", stdout(&out));
        assert!(stderr(&out).contains("no client"), "{id}: {}", stderr(&out));
    }
}

#[test]
fn clients_create_refuses_a_bad_registration_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (args, reason) in [
        (
            vec!["create", "App", "--redirect-uri", "http://app.example/cb"],
            "loopback",
        ),
        (
            vec![
                "create",
                "App",
                "--redirect-uri",
                "https://app.example/cb#x",
            ],
            "fragment",
        ),
        (vec!["create", "App", "--scope", "read  write"], "scope"),
        (vec!["create", "   "], "client name"),
    ] {
        let out = clients(dir.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
        assert!(stderr(&out).contains(reason), "{args:?}: {}", stderr(&out));
    }
    let (text, rows) = list(dir.path());
    assert!(rows.is_empty(), "{text}");
}

/// `tessera clients delete`, run against a deployment's store while two instances serve it,
/// ends the client's tokens at both at once: the deletion's revocation goes through the
/// store's feed like any other, with no restart or reload. (The service flow and the admin
/// route are tested in the server's suite; this is the operator's command on a live
/// deployment.)
#[test]
fn deleting_a_client_from_the_cli_ends_its_tokens_at_running_instances() {
    let Some(deployment) = common::Deployment::new(true) else {
        return;
    };
    let servers = deployment.start(2, &[]);
    let admin = |args: &[&str]| {
        tessera()
            .env("TESSERA_KEK", common::TEST_KEK)
            .arg("clients")
            .args(args)
            .args(deployment.store_args())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let client = json(&admin(&["create", "reports", "--scope", "read"]));
    let introspector = json(&admin(&["create", "gateway"]));
    let field = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap().to_owned();
    let (id, secret) = (field(&client, "client_id"), field(&client, "client_secret"));
    let r = servers[0].post_form(
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let token = field(&r.json(), "access_token");
    let active = |server: &common::Server| {
        let r = server.post_form(
            "/oauth/introspect",
            &[
                ("token", token.as_str()),
                ("client_id", &field(&introspector, "client_id")),
                ("client_secret", &field(&introspector, "client_secret")),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["active"].as_bool().unwrap()
    };
    assert!(servers.iter().all(active));

    let out = admin(&["delete", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while servers.iter().any(active) {
        assert!(
            std::time::Instant::now() < deadline,
            "an instance still takes the deleted client's token"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = servers[1].post_form(
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    );
    assert_eq!(r.status, 401, "{}", r.body);
}
