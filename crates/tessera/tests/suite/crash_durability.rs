#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The embedded store keeps its promises across a crash: a `tessera serve` killed with SIGKILL
//! (no graceful shutdown, nothing flushed on the way out) and restarted on the same data
//! directory still honours every session, refresh token, revocation and signing key it had
//! handed out.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use common::{PASSWORD, Server};
use serde_json::json;

/// Both runs share one issuer, as instances behind one load balancer would: the port changes,
/// the tokens' `iss` and `aud` must not.
const ISSUER: &str = "http://tessera.test";

fn serve(data_dir: &Path) -> Server {
    Server::start(|cmd, addr| {
        cmd.arg("--listen")
            .arg(addr.to_string())
            .arg("--issuer")
            .arg(ISSUER)
            .arg("--data-dir")
            .arg(data_dir);
    })
}

fn password_grant(server: &Server) -> (String, String) {
    let resp = server.post_form(
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    let body = resp.json();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn jwks_kids(server: &Server) -> Vec<String> {
    let resp = server.get("/.well-known/jwks.json", &[]);
    assert_eq!(resp.status, 200, "{resp:?}");
    let mut kids: Vec<String> = resp.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

#[test]
fn sigkill_and_restart_keeps_sessions_tokens_revocations_and_signing_key() {
    let data = tempfile::tempdir().unwrap();

    // --- first run: hand out one of everything ---
    let first = serve(data.path());
    let resp = first.post_json(
        "/v1/users",
        &json!({ "username": "alice", "password": PASSWORD }),
    );
    assert_eq!(resp.status, 201, "{resp:?}");

    let resp = first.post_json(
        "/v1/sessions",
        &json!({ "username": "alice", "password": PASSWORD }),
    );
    assert_eq!(resp.status, 201, "{resp:?}");
    let cookie = resp
        .cookie("__Host-tessera_session")
        .expect("login sets the session cookie");

    let (kept_access, refresh) = password_grant(&first);
    let (revoked_access, _) = password_grant(&first);
    let resp = first.post_form("/oauth/revoke", &[("token", &revoked_access)]);
    assert_eq!(resp.status, 200, "{resp:?}");
    let resp = first.get(
        "/v1/userinfo",
        &[("Authorization", &bearer(&revoked_access))],
    );
    assert_eq!(resp.status, 401, "revocation applies at once: {resp:?}");

    let kids_before = jwks_kids(&first);
    assert_eq!(kids_before.len(), 1, "one signing key on first start");
    // The signing key is sealed under the data directory's KEK file, which the restart must
    // find and use again (it is the KEK passed through to the second run).
    let kek_file = data.path().join("kek");
    let kek_before = std::fs::read(&kek_file).expect("the first start creates the kek file");
    let mode = std::fs::metadata(&kek_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the kek file is private");

    // --- crash: SIGKILL, no graceful shutdown ---
    let status = first.kill();
    assert_eq!(status.signal(), Some(9), "killed, not shut down: {status}");

    // --- second run on the same data directory, another port ---
    let second = serve(data.path());

    let resp = second.get("/v1/userinfo", &[("Cookie", &cookie)]);
    assert_eq!(resp.status, 200, "cookie session survives: {resp:?}");
    let info = resp.json();
    assert_eq!(info["auth"], "session");
    assert_eq!(info["username"], "alice");

    let resp = second.get("/v1/userinfo", &[("Authorization", &bearer(&kept_access))]);
    assert_eq!(
        resp.status, 200,
        "unrevoked access JWT still valid: {resp:?}"
    );
    assert_eq!(resp.json()["auth"], "jwt");

    let resp = second.get(
        "/v1/userinfo",
        &[("Authorization", &bearer(&revoked_access))],
    );
    assert_eq!(resp.status, 401, "revocation survives the crash: {resp:?}");
    assert!(
        resp.header("www-authenticate")
            .is_some_and(|v| v.contains("invalid_token")),
        "{resp:?}"
    );

    let resp = second.post_form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    assert_eq!(
        resp.status, 200,
        "refresh token rotates after restart: {resp:?}"
    );
    let rotated = resp.json();
    let successor = rotated["refresh_token"].as_str().unwrap();
    assert!(successor.starts_with("trt_") && successor != refresh);
    let fresh_access = rotated["access_token"].as_str().unwrap();
    let resp = second.get("/v1/userinfo", &[("Authorization", &bearer(fresh_access))]);
    assert_eq!(resp.status, 200, "{resp:?}");

    assert_eq!(
        jwks_kids(&second),
        kids_before,
        "the signing key is kept, not regenerated"
    );
    assert_eq!(
        std::fs::read(&kek_file).unwrap(),
        kek_before,
        "the restart reuses the KEK file"
    );

    let resp = second.post_json(
        "/v1/sessions",
        &json!({ "username": "alice", "password": PASSWORD }),
    );
    assert_eq!(resp.status, 201, "the user can still log in: {resp:?}");
    drop(second);
}
