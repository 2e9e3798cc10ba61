#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The command line as a contract: exit codes, where output goes, and the `TESSERA_*`
//! environment twins, checked on the real binary.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::{PASSWORD, Server, tessera, vector};
use tessera_core::jose::{Algorithm, SigningKey};
use tessera_core::opaque::{OpaqueToken, TokenKind};

fn run(args: &[&str]) -> Output {
    tessera().args(args).stdin(Stdio::null()).output().unwrap()
}

fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = tessera()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write_key(dir: &Path, jwk: &serde_json::Value) -> PathBuf {
    let path = dir.join("key.json");
    std::fs::write(&path, jwk.to_string()).unwrap();
    path
}

/// RFC 8037 A.4: the Ed25519 key (private JWK; only its public part is used) and token.
fn rfc8037_ed25519() -> (serde_json::Value, String, String) {
    let v = vector("jose-cookbook/curve25519/jws.json");
    (
        v["input"]["key"].clone(),
        v["output"]["compact"].as_str().unwrap().to_owned(),
        v["input"]["payload"].as_str().unwrap().to_owned(),
    )
}

fn verify(key: &Path, token: &str) -> Output {
    run(&["jws", "verify", "--key", key.to_str().unwrap(), token])
}

#[test]
fn jws_verify_accepts_rfc8037_ed25519_example_and_prints_payload() {
    let dir = tempfile::tempdir().unwrap();
    let (jwk, token, payload) = rfc8037_ed25519();
    let out = verify(&write_key(dir.path(), &jwk), &token);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim_end(), payload);
}

#[test]
fn jws_verify_accepts_rfc7520_hs256_example_and_prints_payload() {
    let dir = tempfile::tempdir().unwrap();
    let jwk = vector("jose-cookbook/jwk/3_5.symmetric_key_mac_computation.json");
    let v = vector("jose-cookbook/jws/4_4.hmac-sha2_integrity_protection.json");
    let token = v["output"]["compact"].as_str().unwrap();
    let out = verify(&write_key(dir.path(), &jwk), token);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim_end(),
        v["input"]["payload"].as_str().unwrap()
    );
}

#[test]
fn jws_verify_exits_1_with_reason_for_a_tampered_payload() {
    let dir = tempfile::tempdir().unwrap();
    let (jwk, token, _) = rfc8037_ed25519();
    let parts: Vec<&str> = token.split('.').collect();
    // "Example of Ed25519 signinG", base64url: same header and signature, another payload.
    let tampered = format!(
        "{}.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbkc.{}",
        parts[0], parts[2]
    );
    assert_ne!(tampered, token);
    let out = verify(&write_key(dir.path(), &jwk), &tampered);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "no payload for a bad token");
    assert!(stderr(&out).contains("invalid"), "{}", stderr(&out));
}

#[test]
fn jws_verify_exits_1_for_alg_none_even_with_a_valid_key() {
    let dir = tempfile::tempdir().unwrap();
    let (jwk, token, _) = rfc8037_ed25519();
    let payload = token.split('.').nth(1).unwrap();
    // {"alg":"none"} and an empty signature: the classic forgery.
    let forged = format!("eyJhbGciOiJub25lIn0.{payload}.");
    let out = verify(&write_key(dir.path(), &jwk), &forged);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert!(!stderr(&out).trim().is_empty(), "a reason on stderr");
}

#[test]
fn jws_verify_pins_the_algorithm_to_the_key_not_the_header() {
    // An EdDSA token presented to an HS256 key: the header's `alg` must not pick the check.
    let dir = tempfile::tempdir().unwrap();
    let hmac = vector("jose-cookbook/jwk/3_5.symmetric_key_mac_computation.json");
    let (_, token, _) = rfc8037_ed25519();
    let out = verify(&write_key(dir.path(), &hmac), &token);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

#[test]
fn jws_verify_exits_2_on_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (jwk, token, _) = rfc8037_ed25519();
    let key = write_key(dir.path(), &jwk);

    let out = run(&["jws", "verify", &token]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing --key: {}",
        stderr(&out)
    );
    let out = run(&["jws", "verify", "--key", key.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing token: {}",
        stderr(&out)
    );

    let missing = dir.path().join("no-such-key.json");
    let out = verify(&missing, &token);
    assert_eq!(
        out.status.code(),
        Some(2),
        "unreadable key: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("no-such-key.json"),
        "{}",
        stderr(&out)
    );

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "not a jwk").unwrap();
    let out = verify(&garbage, &token);
    assert_eq!(
        out.status.code(),
        Some(2),
        "malformed key: {}",
        stderr(&out)
    );
}

#[test]
fn jws_verify_exits_2_for_a_key_whose_use_or_key_ops_forbid_verifying() {
    let dir = tempfile::tempdir().unwrap();
    let (jwk, token, _) = rfc8037_ed25519();
    for (member, value, reason) in [
        ("use", serde_json::json!("enc"), "\"use\" is not \"sig\""),
        (
            "key_ops",
            serde_json::json!(["sign"]),
            "\"key_ops\" does not include \"verify\"",
        ),
        (
            "key_ops",
            serde_json::json!(["verify", "verify"]),
            "key_ops names an operation twice",
        ),
    ] {
        let mut key = jwk.clone();
        key[member] = value;
        let out = verify(&write_key(dir.path(), &key), &token);
        assert_eq!(out.status.code(), Some(2), "{member}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
        assert!(stderr(&out).contains(reason), "{member}: {}", stderr(&out));
    }
}

#[test]
fn jws_verify_accepts_a_key_whose_use_and_key_ops_permit_verifying() {
    let dir = tempfile::tempdir().unwrap();
    let (mut jwk, token, payload) = rfc8037_ed25519();
    jwk["use"] = serde_json::json!("sig");
    jwk["key_ops"] = serde_json::json!(["verify"]);
    let out = verify(&write_key(dir.path(), &jwk), &token);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim_end(), payload);
}

#[test]
fn jws_verify_accepts_an_empty_payload_and_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(Algorithm::EdDSA, "k1".into()).unwrap();
    let jwk = key.verifying_key().public_jwk().unwrap();
    let token = key.sign_bytes(b"").unwrap();
    assert!(token.contains(".."), "{token}");
    let out = verify(&write_key(dir.path(), &jwk), &token);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "{:?}", stdout(&out));
    // The same empty payload under another key's signature is still refused.
    let other = SigningKey::generate(Algorithm::EdDSA, "k1".into()).unwrap();
    let out = verify(
        &write_key(dir.path(), &jwk),
        &other.sign_bytes(b"").unwrap(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn token_inspect_flags_alg_none() {
    // {"alg":"none"}.{"sub":"alice"}. — unsigned, no exp, no aud.
    let out = run(&[
        "token",
        "inspect",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "DANGER exits 1: {}",
        stderr(&out)
    );
    let report = stdout(&out);
    assert!(report.contains("kind: jwt"), "{report}");
    assert!(report.contains("alg \"none\""), "{report}");
    assert!(report.contains("DANGER"), "{report}");
    assert!(report.contains("no \"exp\""), "{report}");
}

#[test]
fn token_inspect_names_a_tessera_session_token() {
    let token = OpaqueToken::generate(TokenKind::Session).unwrap();
    let out = run(&["token", "inspect", token.expose_secret()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("tessera session token"), "{report}");
    assert!(!report.contains("malformed"), "{report}");
}

#[test]
fn token_inspect_reports_a_corrupted_opaque_token_as_malformed() {
    for kind in TokenKind::OPAQUE {
        let token = OpaqueToken::generate(kind).unwrap();
        let good = token.expose_secret();
        // Swap the last character: same shape, checksum broken.
        let last = if good.ends_with('A') { "B" } else { "A" };
        let corrupted = format!("{}{last}", &good[..good.len() - 1]);
        let out = run(&["token", "inspect", &corrupted]);
        let report = stdout(&out);
        assert!(report.contains("[WARNING] malformed"), "{report}");
        assert!(report.contains("checksum mismatch"), "{report}");
        // A warning, not a danger: Tessera refuses it, it grants nothing.
        assert_eq!(out.status.code(), Some(0), "{report}");
    }
    let out = run(&["token", "inspect", "tss_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]);
    assert!(
        stdout(&out).contains("malformed tessera session token"),
        "{}",
        stdout(&out)
    );
}

/// `{"alg":"HS256","typ":"JWT"}.{"sub":"alice","aud":"api","exp":4102444800}` MACed with the
/// secret `secret` (HMAC-SHA-256 computed outside Tessera, with Python's `hmac`).
const SIGNED_WITH_SECRET: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
    eyJzdWIiOiJhbGljZSIsImF1ZCI6ImFwaSIsImV4cCI6NDEwMjQ0NDgwMH0.\
    owS0OzPb73MrClTsUWx0KeScMHwrH7dYW7cJH0YkBHI";

/// The jwt.io debugger's HS256 example token, signed with its default `your-256-bit-secret`.
const JWT_IO_EXAMPLE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
    eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.\
    SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

#[test]
fn token_inspect_names_a_guessable_hmac_secret_and_exits_1() {
    for (token, secret) in [
        (SIGNED_WITH_SECRET, "secret"),
        (JWT_IO_EXAMPLE, "your-256-bit-secret"),
    ] {
        let out = run(&["token", "inspect", token]);
        let report = stdout(&out);
        assert!(
            report.contains(&format!("[DANGER] the HS256 secret is \"{secret}\"")),
            "{report}"
        );
        assert!(report.contains("documented example"), "{report}");
        assert_eq!(out.status.code(), Some(1), "{report}");
    }
}

#[test]
fn token_inspect_finds_no_weak_secret_for_a_random_hmac_key() {
    let key = SigningKey::generate(Algorithm::HS256, "k1".into()).unwrap();
    let token = key
        .sign_compact(
            "JWT",
            &serde_json::json!({"sub": "alice", "aud": "api", "exp": 4_102_444_800_i64}),
        )
        .unwrap();
    let out = run(&["token", "inspect", &token]);
    let report = stdout(&out);
    assert!(!report.contains("secret is"), "{report}");
    assert!(!report.contains("DANGER"), "{report}");
    assert_eq!(out.status.code(), Some(0), "{report}");
}

fn create_user(data_dir: &Path, name: &str, password: &str, admin: bool) -> Output {
    let mut args = vec![
        "users",
        "create",
        name,
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    if admin {
        args.push("--admin");
    }
    run_with_stdin(&args, &format!("{password}\n"))
}

#[test]
fn users_create_reads_password_from_stdin_and_makes_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let out = create_user(dir.path(), "alice", PASSWORD, true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let user: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(user["username"], "alice");
    assert_eq!(user["admin"], true);
    assert!(user["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(
        !stdout(&out).contains(PASSWORD) && !stderr(&out).contains(PASSWORD),
        "the password is never echoed"
    );
}

#[test]
fn users_create_refuses_a_weak_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = create_user(dir.path(), "alice", "short", false);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("weak password"), "{}", stderr(&out));
}

#[test]
fn users_create_refuses_a_taken_username() {
    let dir = tempfile::tempdir().unwrap();
    let out = create_user(dir.path(), "alice", PASSWORD, false);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = create_user(dir.path(), "Alice", "another fine passphrase", true);
    assert_ne!(out.status.code(), Some(0), "usernames are case-insensitive");
    assert!(stderr(&out).contains("taken"), "{}", stderr(&out));
}

#[test]
fn serve_help_lists_the_contract_flags() {
    let out = run(&["serve", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let help = stdout(&out);
    for flag in [
        "--listen",
        "--issuer",
        "--data-dir",
        "--store",
        "--refresh-grace",
        "--redis",
        "--namespace",
        "--trusted-proxy",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    for var in [
        "TESSERA_LISTEN",
        "TESSERA_ISSUER",
        "TESSERA_DATA_DIR",
        "TESSERA_TRUSTED_PROXY",
    ] {
        assert!(help.contains(var), "{var} missing from:\n{help}");
    }
}

#[test]
fn serve_honours_tessera_listen_from_the_environment() {
    let server = Server::start(|cmd, addr| {
        cmd.env("TESSERA_LISTEN", addr.to_string())
            .env("TESSERA_STORE", "memory:");
    });
    let resp = server.get("/healthz", &[]);
    assert_eq!(resp.status, 200, "{resp:?}\n{}", server.log());
    // The default issuer is derived from the listen address, so the variable reached it.
    let resp = server.get("/.well-known/openid-configuration", &[]);
    assert_eq!(
        resp.json()["issuer"],
        format!("http://{}", server.addr),
        "{resp:?}"
    );
}

#[test]
fn serve_reads_a_config_file_below_flags_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    let server = Server::start(|cmd, addr| {
        std::fs::write(
            &config,
            format!(
                "listen = \"{addr}\"\nissuer = \"http://from-the-file.test\"\nstore = \"memory:\"\nrefresh_grace = 0\n"
            ),
        )
        .unwrap();
        cmd.arg("--config").arg(&config);
    });
    let resp = server.get("/.well-known/openid-configuration", &[]);
    assert_eq!(
        resp.json()["issuer"],
        "http://from-the-file.test",
        "{resp:?}"
    );

    // A flag beats the file; so does the environment.
    let flagged = Server::start(|cmd, addr| {
        std::fs::write(
            &config,
            "issuer = \"http://from-the-file.test\"\nstore = \"memory:\"\n",
        )
        .unwrap();
        cmd.args([
            "--listen",
            &addr.to_string(),
            "--issuer",
            "http://from-the-flag.test",
            "--config",
        ])
        .arg(&config)
        .env("TESSERA_ISSUER", "http://from-the-env.test");
    });
    let resp = flagged.get("/.well-known/openid-configuration", &[]);
    assert_eq!(resp.json()["issuer"], "http://from-the-flag.test");
    let env = Server::start(|cmd, addr| {
        cmd.args(["--listen", &addr.to_string(), "--config"])
            .arg(&config)
            .env("TESSERA_ISSUER", "http://from-the-env.test");
    });
    let resp = env.get("/.well-known/openid-configuration", &[]);
    assert_eq!(resp.json()["issuer"], "http://from-the-env.test");
}

#[test]
fn serve_refuses_a_config_file_with_an_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, "listne = \"127.0.0.1:1\"\n").unwrap();
    let out = tessera()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key \"listne\""));
}

/// The address a cookie login through `server` records, sent with `X-Forwarded-For: xff`.
fn login_ip_with_xff(server: &Server, xff: &str) -> serde_json::Value {
    common::register(server, "alice", PASSWORD);
    let body = serde_json::json!({"username": "alice", "password": PASSWORD}).to_string();
    let resp = server.request(
        "POST",
        "/v1/sessions",
        &[("X-Forwarded-For", xff)],
        Some(("application/json", &body)),
    );
    assert_eq!(resp.status, 201, "{resp:?}\n{}", server.log());
    resp.json()["ip"].clone()
}

#[test]
fn serve_trusts_forwarding_headers_from_the_flag_environment_or_config_file() {
    // The test connects from 127.0.0.1: the proxy, once trusted.
    let plain = Server::start(|cmd, addr| {
        cmd.args(["--listen", &addr.to_string(), "--store", "memory:"]);
    });
    assert_eq!(login_ip_with_xff(&plain, "203.0.113.5"), "127.0.0.1");
    let flags = Server::start(|cmd, addr| {
        cmd.args(["--listen", &addr.to_string(), "--store", "memory:"])
            .args(["--trusted-proxy", "192.0.2.0/24"])
            .args(["--trusted-proxy", "127.0.0.1"]);
    });
    assert_eq!(
        login_ip_with_xff(&flags, "6.6.6.6, 203.0.113.5, 192.0.2.9"),
        "203.0.113.5"
    );
    let env = Server::start(|cmd, addr| {
        cmd.args(["--listen", &addr.to_string(), "--store", "memory:"])
            .env("TESSERA_TRUSTED_PROXY", "192.0.2.0/24,127.0.0.0/8");
    });
    assert_eq!(
        login_ip_with_xff(&env, "203.0.113.5, 192.0.2.9"),
        "203.0.113.5"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        "store = \"memory:\"\ntrusted_proxies = [\"192.0.2.0/24\", \"::1\", \"127.0.0.1/32\"]\n",
    )
    .unwrap();
    let file = Server::start(|cmd, addr| {
        cmd.args(["--listen", &addr.to_string(), "--config"])
            .arg(&config);
    });
    assert_eq!(
        login_ip_with_xff(&file, "203.0.113.5, 192.0.2.9"),
        "203.0.113.5"
    );
}

#[test]
fn serve_refuses_a_trusted_proxy_that_is_not_a_network() {
    let out = run(&[
        "serve",
        "--store",
        "memory:",
        "--trusted-proxy",
        "10.0.0.1/8",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the network is 10.0.0.0/8"),
        "{}",
        stderr(&out)
    );
    let out = tessera()
        .args(["serve", "--store", "memory:"])
        .env("TESSERA_TRUSTED_PROXY", "10.0.0.0/8,proxy.internal")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("\"proxy.internal\" is not an IPv4 or IPv6 address"),
        "{}",
        stderr(&out)
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, "trusted_proxies = [\"::/129\"]\n").unwrap();
    let out = tessera()
        .args(["serve", "--store", "memory:", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/129 is longer than an IPv6 address"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_logs_without_colour_codes_when_stderr_is_not_a_terminal() {
    // CI logs and journald show escape codes as garbage: colour only for a terminal.
    let addr = common::free_port();
    let mut child = tessera()
        .args(["serve", "--listen", &addr.to_string(), "--store", "memory:"])
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = Vec::new();
        std::io::Read::read_to_end(&mut pipe, &mut log).map(|_| log)
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !common::try_request(addr, "GET", "/healthz", &[], None).is_ok_and(|r| r.status == 200) {
        assert!(child.try_wait().unwrap().is_none(), "tessera serve exited");
        assert!(std::time::Instant::now() < deadline, "not healthy in 30 s");
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let log = reader.join().unwrap().unwrap();
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("tessera listening"), "{text}");
    assert!(!log.contains(&0x1b), "ESC in a piped log: {text:?}");
}

/// Regression: key ids are base64url, and about one in 64 starts with `-`; `keys revoke` must
/// take such a kid as the argument it is, not as an unknown flag (the key drill flaked on it).
#[test]
fn keys_revoke_takes_a_kid_that_starts_with_a_hyphen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = run(&[
        "keys",
        "revoke",
        "-CXP8Imnp_YNd_x8LXm84A",
        "--data-dir",
        data,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("-CXP8Imnp_YNd_x8LXm84A"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("unexpected argument"),
        "{}",
        stderr(&out)
    );
}
