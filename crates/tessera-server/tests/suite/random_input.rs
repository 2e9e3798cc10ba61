//! Property-style robustness: hundreds of random and malformed bodies, content types,
//! `Authorization` headers, cookies and CSRF/fetch-metadata headers sent to every endpoint.
//! Whatever arrives, the answer is never a 5xx, and every error is OAuth2-shaped JSON.
//!
//! The generator is a fixed-seed SplitMix64, so a failure reproduces exactly; the failing
//! iteration's seed and request are printed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common;

use axum::http::{HeaderName, Method};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::{Value, json};

const ITERATIONS_PER_ENDPOINT: u64 = 200;

/// SplitMix64: tiny, deterministic, good enough to pick shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap()).unwrap()
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| (self.next() & 0xff) as u8).collect()
    }

    /// Bytes a header value may hold (visible ASCII, space, tab, obs-text).
    fn header_bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| {
                loop {
                    let b = (self.next() & 0xff) as u8;
                    if b == b'\t' || (b >= 0x20 && b != 0x7f) {
                        break b;
                    }
                }
            })
            .collect()
    }

    fn string(&mut self, max_len: usize) -> String {
        const PIECES: &[&str] = &[
            "a", "Z", "0", " ", "_", "-", ".", "@", "é", "ß", "\u{0}", "\u{202e}", "\"", "\\", "=",
            "&", "%", "+", ";", "tss_", "trt_", "alice", "password", "ey", "\n", "💥",
        ];
        let len = self.below(max_len + 1);
        (0..len).map(|_| *self.pick(PIECES)).collect()
    }

    fn json_value(&mut self, depth: u32) -> Value {
        match self.below(if depth == 0 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json!(self.chance(2)),
            2 => json!(self.next() as i64),
            3 => json!(f64::from(u32::try_from(self.next() >> 40).unwrap()) / 7.0),
            4 => json!(self.string(40)),
            5 => Value::Array(
                (0..self.below(4))
                    .map(|_| self.json_value(depth - 1))
                    .collect(),
            ),
            _ => {
                let mut map = serde_json::Map::new();
                for _ in 0..self.below(4) {
                    let key = self.pick(FIELDS).to_string();
                    map.insert(key, self.json_value(depth - 1));
                }
                Value::Object(map)
            }
        }
    }
}

/// Every field name any endpoint reads.
const FIELDS: &[&str] = &[
    "username",
    "password",
    "current_password",
    "new_password",
    "grant_type",
    "refresh_token",
    "scope",
    "token",
    "token_type_hint",
    "client_id",
];

const GRANTS: &[&str] = &[
    "password",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "",
];

struct Live {
    cookie: CookieSession,
    tokens: AppTokens,
    kid: String,
}

/// The bytes of `s` that a header value may hold.
fn header_safe(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
        .collect()
}

fn percent_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

fn mutate(rng: &mut Rng, token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    match rng.below(4) {
        0 if !bytes.is_empty() => {
            let i = rng.below(bytes.len());
            bytes[i] = *rng.pick(b"AZaz09-_.=+/ ");
        }
        1 => {
            let keep = rng.below(bytes.len() + 1);
            bytes.truncate(keep);
        }
        2 => {
            const TAILS: &[&[u8]] = &[b"A", b"==", b".", b"\xc3"];
            let tail: &[u8] = TAILS[rng.below(TAILS.len())];
            bytes.extend_from_slice(tail);
        }
        _ => {}
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A JWS-shaped token with hostile headers and claims.
fn fake_jwt(rng: &mut Rng, live: &Live) -> String {
    let alg = *rng.pick(&["EdDSA", "none", "HS256", "RS256", "ES256", "", "eddsa"]);
    let mut header = json!({"alg": alg, "typ": *rng.pick(&["at+jwt", "JWT", ""])});
    if rng.chance(2) {
        header["kid"] = json!(if rng.chance(2) {
            live.kid.clone()
        } else {
            rng.string(10)
        });
    }
    if rng.chance(4) {
        header["crit"] = json!(["exp"]);
    }
    if rng.chance(4) {
        header["jku"] = json!("https://evil.example/jwks");
    }
    let mut claims = jwt_part(&live.tokens.access, 1);
    for _ in 0..rng.below(3) {
        let key = *rng.pick(&["exp", "iat", "nbf", "sub", "aud", "iss", "sid", "jti"]);
        claims[key] = rng.json_value(1);
    }
    let sig = rng.bytes(80);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

fn random_token(rng: &mut Rng, live: &Live) -> String {
    match rng.below(9) {
        0 => live.tokens.access.clone(),
        1 => live.cookie.token.clone(),
        2 => live.tokens.refresh.clone(),
        3 => mutate(rng, &live.tokens.access),
        4 => mutate(rng, &live.cookie.token),
        5 => mutate(rng, &live.tokens.refresh),
        6 => fake_jwt(rng, live),
        7 => format!("{}{}", rng.pick(&["tss_", "trt_", ""]), rng.string(60)),
        _ => String::from_utf8_lossy(&rng.header_bytes(80)).into_owned(),
    }
}

fn random_body(rng: &mut Rng, live: &Live) -> (Option<&'static str>, Vec<u8>) {
    const TYPES: &[Option<&str>] = &[
        Some("application/json"),
        Some("application/x-www-form-urlencoded"),
        Some("application/json; charset=utf-16"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded; charset=latin1"),
        Some(";;;"),
        None,
    ];
    let ct = *rng.pick(TYPES);
    let body = match rng.below(7) {
        0 => Vec::new(),
        1 => rng.bytes(300),
        2 => rng.json_value(4).to_string().into_bytes(),
        3 => {
            // A plausible object: known fields, random or live values.
            let mut obj = serde_json::Map::new();
            for _ in 0..rng.below(6) {
                let key = rng.pick(FIELDS).to_string();
                let value = match rng.below(4) {
                    0 => json!(*rng.pick(GRANTS)),
                    1 => json!(random_token(rng, live)),
                    2 => json!(*rng.pick(&["alice", PASSWORD, NEW_PASSWORD, "bob"])),
                    _ => rng.json_value(2),
                };
                obj.insert(key, value);
            }
            Value::Object(obj).to_string().into_bytes()
        }
        4 => {
            // A form: known and unknown keys, repeated keys, raw and percent-encoded bytes.
            let mut parts = Vec::new();
            for _ in 0..rng.below(6) {
                let key = if rng.chance(5) {
                    rng.string(5)
                } else {
                    rng.pick(FIELDS).to_string()
                };
                let value = match rng.below(4) {
                    0 => rng.pick(GRANTS).to_string(),
                    1 => random_token(rng, live),
                    2 => percent_encode(&rng.bytes(20)),
                    _ => rng.string(20),
                };
                parts.push(format!("{key}={value}"));
            }
            parts
                .join(if rng.chance(8) { ";" } else { "&" })
                .into_bytes()
        }
        5 => {
            // Deep nesting.
            let depth = 1 + rng.below(300);
            let mut s = "[".repeat(depth);
            s.push_str(&"]".repeat(rng.below(depth + 1)));
            s.into_bytes()
        }
        _ => {
            // Around the size limit.
            let len = 16 * 1024 - 40 + rng.below(80);
            let mut s = String::from("{\"username\":\"");
            s.push_str(&"a".repeat(len));
            s.push_str("\",\"password\":\"x\"}");
            s.into_bytes()
        }
    };
    (ct, body)
}

/// A body close to what `path` expects (right field names, mostly sensible values), then
/// perhaps broken in one place: a field dropped, retyped or repeated.
fn plausible_body(rng: &mut Rng, live: &Live, path: &str) -> (Option<&'static str>, Vec<u8>) {
    let mut fields: Vec<(&str, Value)> = match path {
        "/v1/users" => vec![
            ("username", json!(format!("user{}", rng.below(1000)))),
            (
                "password",
                json!(*rng.pick(&[PASSWORD, "short", "user1user1user1user1"])),
            ),
        ],
        "/v1/sessions" => vec![
            ("username", json!(*rng.pick(&["alice", "bob", "nobody"]))),
            (
                "password",
                json!(*rng.pick(&[PASSWORD, NEW_PASSWORD, "wrong"])),
            ),
        ],
        "/v1/password" => vec![
            (
                "current_password",
                json!(*rng.pick(&[PASSWORD, NEW_PASSWORD, "wrong"])),
            ),
            (
                "new_password",
                json!(*rng.pick(&[PASSWORD, NEW_PASSWORD, "weak"])),
            ),
        ],
        "/oauth/token" => {
            if rng.chance(2) {
                vec![
                    ("grant_type", json!("password")),
                    ("username", json!(*rng.pick(&["alice", "bob", "nobody"]))),
                    (
                        "password",
                        json!(*rng.pick(&[PASSWORD, NEW_PASSWORD, "wrong"])),
                    ),
                    (
                        "scope",
                        json!(*rng.pick(&["read", "a b", "", "bad\\scope"])),
                    ),
                ]
            } else {
                vec![
                    ("grant_type", json!("refresh_token")),
                    ("refresh_token", json!(random_token(rng, live))),
                ]
            }
        }
        _ => vec![
            ("token", json!(random_token(rng, live))),
            (
                "token_type_hint",
                json!(*rng.pick(&["access_token", "refresh_token", "x"])),
            ),
        ],
    };
    match rng.below(5) {
        0 if !fields.is_empty() => {
            let i = rng.below(fields.len());
            fields.remove(i);
        }
        1 if !fields.is_empty() => {
            let i = rng.below(fields.len());
            fields[i].1 = rng.json_value(2);
        }
        2 if !fields.is_empty() => {
            let i = rng.below(fields.len());
            let dup = fields[i].clone();
            fields.push(dup);
        }
        _ => {}
    }
    if rng.chance(2) {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                serde_urlencoded::to_string([(k, v)]).unwrap()
            })
            .collect();
        (
            Some("application/x-www-form-urlencoded"),
            body.join("&").into_bytes(),
        )
    } else {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}:{v}", json!(k)))
            .collect();
        (
            Some("application/json"),
            format!("{{{}}}", body.join(",")).into_bytes(),
        )
    }
}

fn random_request(rng: &mut Rng, live: &Live, method: &Method, path: &str) -> Req {
    let mut req = Req::new(method.clone(), path);
    match rng.below(8) {
        0 => {}
        6 => req = req.bearer(&live.tokens.access),
        7 => req = req.bearer(&live.cookie.token),
        1 => {
            let value = header_safe(&format!("Bearer {}", random_token(rng, live)));
            req = req.header_bytes(HeaderName::from_static("authorization"), &value);
        }
        2 => {
            let scheme = *rng.pick(&["Basic ", "bearer  ", "Bearer", "Token ", "", "Bearer \t"]);
            let mut value = scheme.as_bytes().to_vec();
            value.extend(rng.header_bytes(60));
            req = req.header_bytes(HeaderName::from_static("authorization"), &value);
        }
        3 => {
            req = req.header_bytes(
                HeaderName::from_static("authorization"),
                &rng.header_bytes(100),
            )
        }
        _ => {
            let value = header_safe(&format!("bEaReR {}", random_token(rng, live)));
            req = req.header_bytes(HeaderName::from_static("authorization"), &value);
        }
    }
    match rng.below(5) {
        0 | 3 => req = req.cookie(&live.cookie.token),
        1 => {
            let value = header_safe(&format!("{COOKIE}={}", random_token(rng, live)));
            req = req.header_bytes(HeaderName::from_static("cookie"), &value);
        }
        2 => {
            let mut value = format!("{COOKIE}=").into_bytes();
            value.extend(rng.header_bytes(60));
            req = req.header_bytes(HeaderName::from_static("cookie"), &value);
        }
        _ => {}
    }
    if rng.chance(2) {
        let csrf = if rng.chance(2) {
            live.cookie.csrf.clone()
        } else {
            rng.string(30)
        };
        req = req.header_bytes(HeaderName::from_static("x-csrf-token"), &header_safe(&csrf));
    }
    if rng.chance(3) {
        let origin = rng
            .pick(&[ISSUER, "https://evil.example", "null", ""])
            .as_bytes()
            .to_vec();
        req = req.header_bytes(HeaderName::from_static("origin"), &origin);
    }
    if rng.chance(3) {
        let site = rng
            .pick(&[&b"same-origin"[..], b"cross-site", b"none", b"\xff"])
            .to_vec();
        req = req.header_bytes(HeaderName::from_static("sec-fetch-site"), &site);
    }
    if rng.chance(4) {
        let ip = format!("203.0.113.{}:{}", rng.below(256), rng.below(65536));
        req = req.client_ip(&ip);
    }
    if *method == Method::POST || rng.chance(4) {
        let (ct, body) = if rng.chance(2) {
            plausible_body(rng, live, path)
        } else {
            random_body(rng, live)
        };
        req = match ct {
            Some(ct) => req.raw(ct, body),
            None => req.body(body),
        };
    }
    req
}

/// Fresh credentials for alice, whatever the previous round did to her (revoked sessions,
/// a changed password, a throttled account).
async fn fresh_credentials(s: &TestServer) -> Live {
    s.advance(301);
    let mut password = PASSWORD;
    let mut r = s.login_raw("alice", password).await;
    if r.status != axum::http::StatusCode::CREATED {
        password = NEW_PASSWORD;
        r = s.login_raw("alice", password).await;
    }
    let cookie = cookie_session(&r);
    let tokens = s.password_grant("alice", password).await;
    let kid = jwt_part(&tokens.access, 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    Live {
        cookie,
        tokens,
        kid,
    }
}

#[tokio::test]
async fn random_input_never_causes_a_server_error() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    s.register("bob", PASSWORD).await;
    let endpoints = [
        (Method::POST, "/v1/users"),
        (Method::POST, "/v1/sessions"),
        (Method::GET, "/v1/sessions"),
        (Method::DELETE, "/v1/sessions"),
        (Method::DELETE, "/v1/sessions/{current}"),
        (Method::DELETE, "/v1/sessions/%FF%00"),
        (Method::GET, "/v1/session"),
        (Method::DELETE, "/v1/session"),
        (Method::GET, "/v1/userinfo"),
        (Method::POST, "/v1/password"),
        (Method::POST, "/oauth/token"),
        (Method::POST, "/oauth/revoke"),
        (Method::GET, "/.well-known/openid-configuration"),
        (Method::GET, "/.well-known/jwks.json"),
        (Method::GET, "/healthz"),
        (Method::GET, "/readyz"),
        (Method::GET, "/metrics"),
        (Method::GET, "/openapi.json"),
        (Method::PUT, "/oauth/token"),
        (Method::GET, "/does/not/exist"),
    ];
    let mut rng = Rng(0x7E55_E7A0);
    let mut statuses = std::collections::BTreeMap::new();
    for (method, path) in &endpoints {
        let mut live = fresh_credentials(&s).await;
        for i in 0..ITERATIONS_PER_ENDPOINT {
            if i % 25 == 0 {
                live = fresh_credentials(&s).await;
            }
            let path = path.replace("{current}", &live.cookie.id);
            let seed = rng.0;
            let req = random_request(&mut rng, &live, method, &path).build();
            let shown = format!("{method} {path} #{i} (seed {seed:#x}): {:?}", req.headers());
            let r = s.send_request(req).await;
            assert!(
                !r.status.is_server_error(),
                "{shown} -> {} {}",
                r.status,
                r.text()
            );
            if !r.status.is_success() {
                let v: Value = serde_json::from_slice(&r.body)
                    .unwrap_or_else(|e| panic!("{shown} -> {} non-JSON error ({e})", r.status));
                assert!(
                    v["error"].is_string() && v["error_description"].is_string(),
                    "{shown} -> {v}"
                );
            }
            *statuses.entry(r.status.as_u16()).or_insert(0u32) += 1;
            // Let time move now and then, so expiry paths are exercised too.
            if rng.chance(50) {
                s.advance(i64::try_from(rng.below(900)).unwrap());
            }
        }
    }
    // The generator reached past the parsers: requests succeeded, and were refused in every
    // way the API refuses.
    for code in [200, 201, 204, 400, 401, 403, 404, 405, 413, 415] {
        assert!(
            statuses.contains_key(&code),
            "never saw {code}: {statuses:?}"
        );
    }
    // The server is still healthy afterwards.
    s.register("carol", PASSWORD).await;
    let c = s.login("carol", PASSWORD).await;
    assert_eq!(s.session_status(&c.token).await, axum::http::StatusCode::OK);
}
