//! Writes the hand-made seed inputs to `fuzz/seeds/<target>/`: real tokens signed by the
//! fixture keys, the RFC 7520 / 8037 example tokens and keys, opaque tokens, cookie and
//! `Authorization` headers, and request bodies. Run from `fuzz/`:
//! `cargo run --example make_seeds`. The fuzzer's own finds live in `fuzz/corpus/<target>/`.
//!
//! `cargo run --example make_seeds -- keys` instead replaces the fixed test keys in
//! `fuzz/keys/` with fresh ones (then rebuild, and regenerate the seeds: old tokens stop
//! verifying).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tessera_core::access::{self, AccessClaims};
use tessera_core::jose::{Algorithm, SigningKey, b64};
use tessera_core::opaque::{OpaqueToken, TokenKind};
use tessera_core::time::UnixTime;
use tessera_fuzz::{AUDIENCE, ISSUER, NOW, fixture};

const PASSWORD: &str = "violet tugboat anagram 1987";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn write(target: &str, name: &str, bytes: impl AsRef<[u8]>) {
    let dir = root().join("seeds").join(target);
    fs::create_dir_all(&dir).expect("seed dir");
    fs::write(dir.join(name), bytes).expect("seed file");
}

fn cookbook(relative: &str) -> Value {
    let path = root()
        .join("../crates/tessera-core/tests/vectors/jose-cookbook")
        .join(relative);
    serde_json::from_str(&fs::read_to_string(&path).expect("cookbook file")).expect("JSON")
}

fn claims(exp: i64) -> AccessClaims {
    AccessClaims {
        iss: ISSUER.into(),
        sub: "user-1".into(),
        aud: AUDIENCE.into(),
        exp: UnixTime(exp),
        iat: NOW.plus(-5),
        nbf: NOW.plus(-5),
        jti: "jti-1".into(),
        sid: Some("sid-1".into()),
        scope: Some("openid profile".into()),
        client_id: "tessera".into(),
        username: Some("alice".into()),
        cnf: None,
    }
}

fn jws_seeds() {
    let f = fixture();
    let t = "jws_verify";
    let valid = claims(NOW.plus(600).0);
    for key in &f.signers {
        let name = key.alg().as_str().to_ascii_lowercase();
        write(
            t,
            &format!("access-{name}"),
            access::issue(key, &valid).expect("issue"),
        );
    }
    let ed: &SigningKey = &f.signers[0];
    write(
        t,
        "access-expired",
        access::issue(ed, &claims(NOW.plus(-3600).0)).expect("issue"),
    );
    write(
        t,
        "access-revoked-kid",
        access::issue(&f.revoked, &valid).expect("issue"),
    );
    let mut payload = serde_json::to_value(&valid).expect("claims");
    payload["aud"] = json!(["https://other", AUDIENCE]);
    write(
        t,
        "access-aud-array",
        ed.sign_compact("at+jwt", &payload).expect("sign"),
    );
    payload["exp"] = json!(1.7e9);
    write(
        t,
        "access-float-exp",
        ed.sign_compact("at+jwt", &payload).expect("sign"),
    );
    write(
        t,
        "id-token-typ-jwt",
        ed.sign_compact("JWT", &json!({"sub": "x"})).expect("sign"),
    );
    let hs = f
        .signers
        .iter()
        .find(|k| k.alg() == Algorithm::HS256)
        .expect("hs256");
    write(
        t,
        "hs256-array-payload",
        hs.sign_compact("JWT", &json!([1, "two"])).expect("sign"),
    );
    let unsigned = |header: &str, body: &str| {
        format!(
            "{}.{}.",
            b64::encode(header.as_bytes()),
            b64::encode(body.as_bytes())
        )
    };
    write(
        t,
        "alg-none",
        unsigned(r#"{"alg":"none"}"#, r#"{"sub":"x"}"#),
    );
    write(
        t,
        "dup-alg",
        unsigned(r#"{"alg":"EdDSA","alg":"none"}"#, "{}") + "AA",
    );
    write(
        t,
        "crit",
        unsigned(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#, "{}") + "AA",
    );
    write(
        t,
        "kid-not-string",
        unsigned(r#"{"alg":"ES256","kid":7}"#, "{}") + "AA",
    );
    for (name, file) in [
        ("rfc7520-4.1-rs256", "jws/4_1.rsa_v15_signature.json"),
        ("rfc7520-4.2-ps384", "jws/4_2.rsa-pss_signature.json"),
        ("rfc7520-4.3-es512", "jws/4_3.ecdsa_signature.json"),
        (
            "rfc7520-4.4-hs256",
            "jws/4_4.hmac-sha2_integrity_protection.json",
        ),
        ("rfc8037-eddsa", "curve25519/jws.json"),
    ] {
        let compact = cookbook(file)["output"]["compact"]
            .as_str()
            .expect("compact")
            .to_owned();
        write(t, name, compact);
    }
    // Mode 0x00: sign this payload with fast key <selector>; mode 0x01: issue these claims.
    let mut sign = vec![0u8, 0];
    sign.extend_from_slice(br#"{"sub":"alice","n":[1,-2,3.5,null,true],"o":{"k":"v"}}"#);
    write(t, "mode-sign", sign);
    let mut issue = vec![1u8, 1];
    issue.extend_from_slice(&serde_json::to_vec(&valid).expect("claims"));
    write(t, "mode-issue", issue);
}

fn jwk_seeds() {
    let f = fixture();
    let t = "jwk_parse";
    for key in &f.verifiers {
        if let Some(jwk) = key.public_jwk() {
            let name = format!("public-{}", key.alg().as_str().to_ascii_lowercase());
            write(t, &name, jwk.to_string());
        }
    }
    let k = b64::encode(&[7u8; 32]);
    write(
        t,
        "oct-hs256",
        json!({"kty": "oct", "k": k, "alg": "HS256"}).to_string(),
    );
    write(
        t,
        "oct-short",
        json!({"kty": "oct", "k": b64::encode(&[7u8; 16])}).to_string(),
    );
    write(t, "dup-member", r#"{"kty":"oct","kty":"RSA"}"#);
    for (name, file) in [
        ("rfc7520-3.1-ec-public", "jwk/3_1.ec_public_key.json"),
        ("rfc7520-3.2-ec-private", "jwk/3_2.ec_private_key.json"),
        ("rfc7520-3.3-rsa-public", "jwk/3_3.rsa_public_key.json"),
        ("rfc7520-3.4-rsa-private", "jwk/3_4.rsa_private_key.json"),
        (
            "rfc7520-3.5-oct-mac",
            "jwk/3_5.symmetric_key_mac_computation.json",
        ),
        (
            "rfc7520-3.6-oct-enc",
            "jwk/3_6.symmetric_key_encryption.json",
        ),
    ] {
        write(t, name, cookbook(file).to_string());
    }
    write(
        t,
        "rfc8037-ed25519",
        cookbook("curve25519/jws.json")["input"]["key"].to_string(),
    );
}

fn opaque_seeds() -> (String, String) {
    let t = "opaque_token";
    let session = OpaqueToken::generate(TokenKind::Session).expect("token");
    let refresh = OpaqueToken::generate(TokenKind::Refresh).expect("token");
    write(t, "session", session.expose_secret());
    write(t, "refresh", refresh.expose_secret());
    write(t, "hash-hex", session.hash().to_hex());
    let mut bad = session.expose_secret().to_owned();
    bad.pop();
    write(t, "session-truncated", &bad);
    write(
        t,
        "session-upper-prefix",
        session.expose_secret().replacen("tss_", "TSS_", 1),
    );
    (
        session.expose_secret().to_owned(),
        refresh.expose_secret().to_owned(),
    )
}

fn header_seeds(session: &str) {
    let t = "http_headers";
    let f = fixture();
    let jwt = access::issue(&f.signers[0], &claims(NOW.plus(600).0)).expect("issue");
    // Line format: selector byte (0 Authorization, 1 Cookie, 2 Content-Type, 3 User-Agent,
    // 4 Origin, 5 Host), then the value.
    let line = |selector: u8, value: &str| {
        let mut v = vec![selector];
        v.extend_from_slice(value.as_bytes());
        v.push(b'\n');
        v
    };
    let cookie = format!("theme=dark; __Host-tessera_session={session}; lang=en");
    write(t, "bearer-jwt", line(0, &format!("Bearer {jwt}")));
    write(t, "bearer-lowercase", line(0, &format!("bearer {session}")));
    write(t, "basic", line(0, "Basic YWxpY2U6c2VjcmV0"));
    write(t, "cookie", line(1, &cookie));
    write(
        t,
        "cookie-quoted",
        line(1, &format!("__Host-tessera_session=\"{session}\"")),
    );
    let mut tossed = line(1, &cookie);
    tossed.extend(line(1, "__Host-tessera_session=tss_other"));
    write(t, "cookie-tossing", tossed);
    let mut browser = line(1, &cookie);
    browser.extend(line(2, "application/json"));
    browser.extend(line(3, "Mozilla/5.0 (X11; Linux x86_64)"));
    browser.extend(line(4, ISSUER));
    browser.extend(line(5, "tessera.fuzz"));
    write(t, "browser", browser);
    let mut repeated = line(0, "Bearer a");
    repeated.extend(line(0, "Bearer b"));
    write(t, "bearer-repeated", repeated);
    write(
        t,
        "non-ascii",
        [0u8, b'B', 0xe9, b'\n', 1, 0xff, b'=', b'x'],
    );
}

fn body_seeds(session: &str, refresh: &str) {
    let t = "request_bodies";
    // Selector: endpoint in bits 0-1 (0 /oauth/token, 1 /oauth/revoke, 2 /v1/users,
    // 3 /v1/sessions), content type in bits 2-4 (0 JSON, 1 form, 4 JSON+charset, 6 text/plain).
    let seed = |name: &str, endpoint: u8, content_type: u8, body: &str| {
        let mut v = vec![endpoint | (content_type << 2)];
        v.extend_from_slice(body.as_bytes());
        write(t, name, v);
    };
    let password = json!({"grant_type": "password", "username": "fuzzuser", "password": PASSWORD,
        "scope": "openid profile"});
    seed("token-password-json", 0, 0, &password.to_string());
    seed(
        "token-password-form",
        0,
        1,
        &format!(
            "grant_type=password&username=fuzzuser&password={}",
            PASSWORD.replace(' ', "+")
        ),
    );
    seed(
        "token-wrong-password-json",
        0,
        0,
        r#"{"grant_type":"password","username":"fuzzuser","password":"nope nope nope nope"}"#,
    );
    seed(
        "token-refresh-json",
        0,
        0,
        &json!({"grant_type": "refresh_token", "refresh_token": refresh}).to_string(),
    );
    seed(
        "token-refresh-form",
        0,
        1,
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    );
    seed("token-unknown-grant", 0, 1, "grant_type=client_credentials");
    seed(
        "token-bad-scope",
        0,
        0,
        r#"{"grant_type":"password","username":"fuzzuser","password":"x","scope":"a\"b"}"#,
    );
    seed(
        "revoke-session-json",
        1,
        0,
        &json!({"token": session, "token_type_hint": "access_token"}).to_string(),
    );
    seed("revoke-refresh-form", 1, 1, &format!("token={refresh}"));
    seed("revoke-jwt-form", 1, 1, "token=eyJhbGciOiJFZERTQSJ9.e30.AA");
    seed(
        "register-json",
        2,
        0,
        &json!({"username": "alice", "password": PASSWORD}).to_string(),
    );
    seed(
        "register-form",
        2,
        1,
        "username=bob&password=purple+monkey+dishwasher+42",
    );
    seed(
        "register-weak",
        2,
        0,
        r#"{"username":"carol","password":"short"}"#,
    );
    seed(
        "login-json",
        3,
        0,
        &json!({"username": "fuzzuser", "password": PASSWORD}).to_string(),
    );
    seed(
        "login-charset",
        3,
        4,
        &json!({"username": "fuzzuser", "password": PASSWORD}).to_string(),
    );
    seed(
        "login-form-extra",
        3,
        1,
        "username=fuzzuser&password=x&username=again",
    );
    seed("login-text-plain", 3, 6, "username=fuzzuser");
    seed("deep-json", 0, 0, &("[".repeat(200) + &"]".repeat(200)));
}

/// Fresh fixture keys, in the persisted form `SigningKey::from_secret` loads.
fn new_keys() {
    let dir = root().join("keys");
    fs::create_dir_all(&dir).expect("keys dir");
    for (alg, file) in [
        (Algorithm::EdDSA, "ed25519.pk8"),
        (Algorithm::ES256, "p256.pk8"),
        (Algorithm::RS256, "rsa2048.pk8"),
        (Algorithm::HS256, "hs256.key"),
    ] {
        let key = SigningKey::generate(alg, "new".into()).expect("generate");
        fs::write(dir.join(file), key.secret_bytes_dangerously().as_slice()).expect("key file");
    }
    println!("new keys written to {}", dir.display());
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("keys") {
        new_keys();
        return;
    }
    jws_seeds();
    jwk_seeds();
    let (session, refresh) = opaque_seeds();
    header_seeds(&session);
    body_seeds(&session, &refresh);
    println!("seeds written to {}", root().join("seeds").display());
}
