//! A mock Tessera: discovery, JWKS, the revocation catch-up list and the event stream, with
//! HTTP Basic client authentication, request counters and switches the tests drive.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{Value, json};
use tessera_core::access::{self, AccessClaims};
use tessera_core::jose::Algorithm;
use tessera_core::keys::{KeyRecord, KeyRing, KeyStatus};
use tessera_core::revocation::Revocation;
use tessera_core::time::{Clock as _, SystemClock, UnixTime};
use tokio::sync::mpsc;

/// The client the mock accepts; both parts need form-urlencoding (RFC 6749 §2.3.1).
pub const CLIENT_ID: &str = "api server";
pub const CLIENT_SECRET: &str = "s:cret/ü";
pub const AUDIENCE: &str = "https://api.example";

/// How often the mock stream sends a heartbeat comment.
pub const HEARTBEAT: Duration = Duration::from_millis(150);

#[derive(Default)]
pub struct Counters {
    pub discovery: AtomicUsize,
    pub jwks: AtomicUsize,
    pub revocations: AtomicUsize,
    pub streams: AtomicUsize,
    pub unauthorised: AtomicUsize,
}

impl Counters {
    pub fn total(&self) -> usize {
        [
            &self.discovery,
            &self.jwks,
            &self.revocations,
            &self.streams,
            &self.unauthorised,
        ]
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .sum()
    }
}

struct MockState {
    issuer: String,
    jwks_uri: String,
    records: Mutex<Vec<KeyRecord>>,
    /// The revocation log: cursor `n` is the n-th entry (1-based).
    log: Mutex<Vec<Value>>,
    /// The open stream's sender, if one is connected.
    stream: Mutex<Option<mpsc::UnboundedSender<String>>>,
    down: AtomicBool,
    heartbeats: AtomicBool,
    counters: Counters,
    /// `since` of every catch-up and `Last-Event-ID` of every stream request, in order.
    since: Mutex<Vec<Option<String>>>,
    last_event_ids: Mutex<Vec<Option<String>>>,
}

pub struct Mock {
    pub url: String,
    state: Arc<MockState>,
    current: KeyRecord,
}

pub fn now() -> UnixTime {
    SystemClock.now()
}

/// A fresh EdDSA key record in `status`.
/// What a revocation of `claims` names: its `jti`, its `sid`, its subject, or the client it
/// was issued to (a deleted client: the same `sub` + `not_before` event, naming the client).
#[derive(Clone, Copy, Debug)]
pub enum Naming {
    Jti,
    Sid,
    User,
    Client,
}

/// A revocation that refuses the token of `claims` by `naming`. A user cutoff is taken from
/// the token's own `iat`: one taken before signing could fall in the token's second and leave
/// it valid.
pub fn revocation_of(claims: &AccessClaims, naming: Naming, expires_at: UnixTime) -> Revocation {
    match naming {
        Naming::Jti => Revocation::Token {
            jti: claims.jti.clone(),
            expires_at,
        },
        Naming::Sid => Revocation::Session {
            sid: claims.sid.clone().expect("the token has a sid"),
            expires_at,
        },
        Naming::User => Revocation::User {
            user_id: claims.sub.clone(),
            not_before: claims.iat.plus(1),
            expires_at,
        },
        Naming::Client => Revocation::User {
            user_id: claims.client_id.clone(),
            not_before: claims.iat.plus(1),
            expires_at,
        },
    }
}

pub fn key(status: KeyStatus) -> KeyRecord {
    KeyRing::generate_record(Algorithm::EdDSA, status, now()).unwrap()
}

/// Signs `claims` with `record` (whatever its status).
pub fn sign_with(record: &KeyRecord, claims: &AccessClaims) -> String {
    let mut signer = record.clone();
    signer.status = KeyStatus::Current;
    let ring = KeyRing::from_records(&[signer]).unwrap();
    access::issue(ring.current().unwrap(), claims).unwrap()
}

impl Mock {
    /// A mock whose issuer is its own URL.
    pub async fn start() -> Self {
        Self::start_as(None, None).await
    }

    /// A mock advertising `issuer` and `jwks_uri` (defaults: its own URL and `{url}/jwks`).
    pub async fn start_as(issuer: Option<&str>, jwks_uri: Option<&str>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let current = key(KeyStatus::Current);
        let state = Arc::new(MockState {
            issuer: issuer.map_or_else(|| url.clone(), str::to_owned),
            jwks_uri: jwks_uri.map_or_else(|| format!("{url}/jwks"), str::to_owned),
            records: Mutex::new(vec![current.clone()]),
            log: Mutex::new(Vec::new()),
            stream: Mutex::new(None),
            down: AtomicBool::new(false),
            heartbeats: AtomicBool::new(true),
            counters: Counters::default(),
            since: Mutex::new(Vec::new()),
            last_event_ids: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/v1/revocations", get(revocations))
            .route("/v1/revocations/stream", get(stream))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            state,
            current,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    pub fn counters(&self) -> &Counters {
        &self.state.counters
    }

    /// Claims for a token valid now, for this mock's issuer and [`AUDIENCE`].
    pub fn claims(&self, jti: &str) -> AccessClaims {
        let now = now();
        AccessClaims {
            iss: self.state.issuer.clone(),
            sub: "alice".into(),
            aud: AUDIENCE.into(),
            exp: now.plus(300),
            iat: now,
            nbf: now,
            jti: jti.into(),
            sid: Some("sid-1".into()),
            scope: Some("read write".into()),
            client_id: "web".into(),
            username: Some("alice".into()),
            cnf: None,
        }
    }

    /// Signs with the published current key.
    pub fn sign(&self, claims: &AccessClaims) -> String {
        sign_with(&self.current, claims)
    }

    pub fn current_kid(&self) -> &str {
        &self.current.kid
    }

    /// Adds `record` to the published JWKS (as `next`).
    pub fn publish(&self, record: &KeyRecord) {
        let mut record = record.clone();
        record.status = KeyStatus::Next;
        self.state.records.lock().unwrap().push(record);
    }

    /// Removes the key `kid` from the published JWKS (retired, or dropped after a revocation).
    pub fn unpublish(&self, kid: &str) {
        self.state.records.lock().unwrap().retain(|r| r.kid != kid);
    }

    /// Records a revocation and sends it to the connected stream, if any; returns its cursor.
    pub fn revoke(&self, r: &Revocation) -> String {
        let wire = r.to_wire();
        let mut log = self.state.log.lock().unwrap();
        log.push(wire.clone());
        let cursor = log.len().to_string();
        if let Some(tx) = self.state.stream.lock().unwrap().as_ref() {
            let _ = tx.send(event(&cursor, &wire));
        }
        cursor
    }

    /// Ends the connected stream (the server dropping a slow subscriber, say).
    pub fn end_stream(&self) {
        self.state.stream.lock().unwrap().take();
    }

    /// Takes the revocation endpoints down (503) or brings them back.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
        if down {
            self.end_stream();
        }
    }

    /// Stops or resumes heartbeats on streams opened from now on.
    pub fn set_heartbeats(&self, on: bool) {
        self.state.heartbeats.store(on, Ordering::SeqCst);
    }

    pub fn since(&self) -> Vec<Option<String>> {
        self.state.since.lock().unwrap().clone()
    }

    pub fn last_event_ids(&self) -> Vec<Option<String>> {
        self.state.last_event_ids.lock().unwrap().clone()
    }

    /// Waits until `n` stream connections have been made (at most 5 s).
    pub async fn wait_for_streams(&self, n: usize) {
        for _ in 0..500 {
            if self.counters().streams.load(Ordering::SeqCst) >= n
                && self.state.stream.lock().unwrap().is_some()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no stream connection number {n}");
    }
}

fn event(cursor: &str, wire: &Value) -> String {
    format!("event: revocation\nid: {cursor}\ndata: {wire}\n\n")
}

async fn discovery(State(s): State<Arc<MockState>>) -> Json<Value> {
    s.counters.discovery.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "issuer": s.issuer,
        "jwks_uri": s.jwks_uri,
        "token_endpoint": format!("{}/oauth/token", s.issuer),
    }))
}

async fn jwks(State(s): State<Arc<MockState>>) -> Json<Value> {
    s.counters.jwks.fetch_add(1, Ordering::SeqCst);
    let records = s.records.lock().unwrap().clone();
    Json(KeyRing::from_records(&records).unwrap().jwks())
}

fn authorised(s: &MockState, headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("api+server:s%3Acret%2F%C3%BC")
    );
    let ok = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !ok {
        s.counters.unauthorised.fetch_add(1, Ordering::SeqCst);
    }
    ok
}

/// Entries after `cursor`, or all of them for a cursor the mock cannot continue from.
fn after(log: &[Value], cursor: Option<&str>) -> Vec<(String, Value)> {
    let from = cursor
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|n| *n <= log.len())
        .unwrap_or(0);
    log.iter()
        .enumerate()
        .skip(from)
        .map(|(i, w)| ((i + 1).to_string(), w.clone()))
        .collect()
}

async fn revocations(
    State(s): State<Arc<MockState>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    s.counters.revocations.fetch_add(1, Ordering::SeqCst);
    if !authorised(&s, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let since = query.get("since").cloned();
    s.since.lock().unwrap().push(since.clone());
    let log = s.log.lock().unwrap();
    let entries: Vec<Value> = after(&log, since.as_deref())
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    Json(json!({ "cursor": log.len().to_string(), "revocations": entries })).into_response()
}

async fn stream(State(s): State<Arc<MockState>>, headers: HeaderMap) -> Response {
    s.counters.streams.fetch_add(1, Ordering::SeqCst);
    if !authorised(&s, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    s.last_event_ids.lock().unwrap().push(last.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    {
        let log = s.log.lock().unwrap();
        for (cursor, wire) in after(&log, last.as_deref()) {
            tx.send(event(&cursor, &wire)).unwrap();
        }
        *s.stream.lock().unwrap() = Some(tx);
    }
    let heartbeats = s.heartbeats.load(Ordering::SeqCst);
    let body = futures_util::stream::unfold(
        (rx, tokio::time::interval(HEARTBEAT)),
        move |(mut rx, mut tick)| async move {
            loop {
                tokio::select! {
                    message = rx.recv() => {
                        return message.map(|m| (Ok::<_, Infallible>(m), (rx, tick)));
                    }
                    _ = tick.tick() => {
                        if heartbeats {
                            return Some((Ok(": heartbeat\n\n".to_owned()), (rx, tick)));
                        }
                    }
                }
            }
        },
    );
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}
