#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Three `tessera serve` processes over one shared store behave as one server: a session made
//! on one works on the others, a logout anywhere is refused everywhere on the very next
//! request, a revoked JWT is refused by every instance within milliseconds (pushed, not
//! polled), concurrent refreshes of one token on different instances agree, and a password
//! change kills every credential on every instance.
//!
//! Run twice: over PostgreSQL alone (revocations pushed with `LISTEN/NOTIFY`) and over
//! PostgreSQL plus Redis (sessions in Redis, revocations pushed with pub/sub). The services are
//! named by `TESSERA_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`) and
//! `TESSERA_TEST_REDIS` (default `redis://127.0.0.1:6379`); when one is unreachable the test
//! prints "skipping: …" — unless `CI=true`, where it fails. Each run uses a fresh random
//! namespace (PostgreSQL schema, Redis key prefix) and removes it afterwards, also when a test
//! fails (`common::Deployment`).

use crate::common;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::{
    Deployment, PASSWORD, Response, Server, bearer, cookie_login, password_grant, register,
    userinfo_bearer, userinfo_cookie,
};
use serde_json::json;

/// The password a password change switches to.
const NEW_PASSWORD: &str = "quartz meadow lantern river";

/// How long a pushed revocation may take to reach every instance. The feed delivers in
/// milliseconds; the margin is for a loaded CI machine, not for polling.
const PUSH_WITHIN: Duration = Duration::from_secs(2);

// --- The scenario. ---

const NAMES: [&str; 3] = ["A", "B", "C"];

fn refresh(server: &Server, token: &str) -> Response {
    server.post_form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
}

/// Sends the same refresh token to every server at the same moment (a barrier releases the
/// threads together) and returns the answers in server order.
fn race_refresh(servers: &[Server], token: &str) -> Vec<Response> {
    let barrier = Barrier::new(servers.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = servers
            .iter()
            .map(|s| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    refresh(s, token)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// When a revoked credential was first refused by one instance: after how long (from the
/// revocation's answer) and at which poll.
struct Refused {
    what: String,
    after: Duration,
    polls: u32,
}

/// Polls until every `(server, bearer token)` pair is refused with 401. Until then a pair must
/// still be a plain 200 (anything else is a bug, not a delay). Returns when each pair was
/// first refused, measured from `since`; panics after [`PUSH_WITHIN`].
fn wait_refused(
    servers: &[(&str, &Server)],
    tokens: &[(&str, &str)],
    since: Instant,
) -> Vec<Refused> {
    let mut pending: Vec<(String, &Server, &str, u32)> = servers
        .iter()
        .flat_map(|&(name, s)| {
            tokens
                .iter()
                .map(move |(label, t)| (format!("{label} on {name}"), s, *t, 0))
        })
        .collect();
    let mut refused = Vec::new();
    while !pending.is_empty() {
        let mut i = 0;
        while i < pending.len() {
            let (label, server, token, polls) = &mut pending[i];
            *polls += 1;
            let resp = userinfo_bearer(server, token);
            match resp.status {
                401 => {
                    refused.push(Refused {
                        what: label.clone(),
                        after: since.elapsed(),
                        polls: *polls,
                    });
                    pending.remove(i);
                }
                200 => i += 1,
                _ => panic!("{label}: neither accepted nor refused: {resp:?}"),
            }
        }
        let late: Vec<&str> = pending.iter().map(|p| p.0.as_str()).collect();
        assert!(
            since.elapsed() < PUSH_WITHIN,
            "revocation not applied within {PUSH_WITHIN:?}: {late:?} still accepted"
        );
    }
    refused
}

/// A cookie session made on A works on B and C; a logout on C is refused on A at the very
/// next request. Sessions are not cached by instances, so there is nothing to wait for.
fn cookie_session_is_shared_and_logout_is_instant(servers: &[Server]) {
    let [a, b, c] = servers else {
        panic!("three servers")
    };
    register(a, "alice", PASSWORD);
    let (cookie, csrf) = cookie_login(a, "alice", PASSWORD);
    for (s, name) in servers.iter().zip(NAMES) {
        let resp = userinfo_cookie(s, &cookie);
        assert_eq!(
            resp.status, 200,
            "session made on A, used on {name}: {resp:?}"
        );
        let info = resp.json();
        assert_eq!(info["auth"], "session", "{name}");
        assert_eq!(info["username"], "alice", "{name}");
    }
    let resp = c.request(
        "DELETE",
        "/v1/session",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        None,
    );
    assert_eq!(resp.status, 204, "logout on C: {resp:?}");
    // No sleep, no retry: the next request anywhere must already be refused.
    let resp = userinfo_cookie(a, &cookie);
    assert_eq!(resp.status, 401, "A, right after the logout on C: {resp:?}");
    let resp = userinfo_cookie(b, &cookie);
    assert_eq!(resp.status, 401, "B, right after the logout on C: {resp:?}");
}

/// A JWT revoked on B is refused on A and C once the feed has delivered; returns the delays.
fn jwt_revocation_reaches_every_instance(servers: &[Server]) -> Vec<Refused> {
    let [a, b, c] = servers else {
        panic!("three servers")
    };
    let (jwt, _) = password_grant(a, "alice", PASSWORD);
    // Accepted everywhere first, so a later 401 can only be the revocation.
    for (s, name) in servers.iter().zip(NAMES) {
        let resp = userinfo_bearer(s, &jwt);
        assert_eq!(
            resp.status, 200,
            "JWT minted on A, used on {name}: {resp:?}"
        );
        assert_eq!(resp.json()["auth"], "jwt");
    }
    let resp = b.post_form("/oauth/revoke", &[("token", &jwt)]);
    assert_eq!(resp.status, 200, "revoke on B: {resp:?}");
    let revoked = Instant::now();
    // The revoking instance applies the revocation before answering.
    let resp = userinfo_bearer(b, &jwt);
    assert_eq!(resp.status, 401, "B, right after revoking: {resp:?}");
    wait_refused(&[("A", a), ("C", c)], &[("revoked JWT", &jwt)], revoked)
}

fn named(servers: &[Server]) -> Vec<(&str, &Server)> {
    NAMES.into_iter().zip(servers).collect()
}

/// The same refresh token sent to A, B and C at once, within the grace window: one racer
/// rotates it, one more may replay it — the one replay a rotation allows, for a client that
/// lost the answer — and gets the same successor, and the third presentation is reuse, which
/// kills the family. The answers that succeed agree; at most two succeed (fewer when the
/// reuse revokes the session before a winner has checked it, as in the race without grace).
fn concurrent_refreshes_within_grace_replay_once(servers: &[Server]) {
    let [a, b, c] = servers else {
        panic!("three servers")
    };
    let (_, token) = password_grant(a, "alice", PASSWORD);
    let answers = race_refresh(servers, &token);
    let mut successors = Vec::new();
    for (resp, name) in answers.iter().zip(NAMES) {
        match resp.status {
            200 => successors.push(resp.json()["refresh_token"].as_str().unwrap().to_owned()),
            400 => assert_eq!(resp.json()["error"], "invalid_grant", "{name}: {resp:?}"),
            _ => panic!("refresh race within grace, {name}: {resp:?}"),
        }
    }
    assert!(successors.len() <= 2, "more than one replay: {answers:?}");
    assert!(
        successors.windows(2).all(|w| w[0] == w[1]),
        "successful racers get the same successor: {successors:?}"
    );
    assert!(!successors.contains(&token), "the token rotated");
    // The third presentation was reuse: the raced token and its successor are dead.
    let resp = refresh(b, &token);
    assert_eq!(resp.status, 400, "raced token after reuse: {resp:?}");
    if let Some(successor) = successors.first() {
        let resp = refresh(c, successor);
        assert_eq!(resp.status, 400, "successor after reuse: {resp:?}");
        assert_eq!(resp.json()["error"], "invalid_grant");
    }
}

/// With `--refresh-grace 0` any second use of a refresh token is reuse: of three racers at
/// most one wins, the others get 400 `invalid_grant`, and the reuse revokes the whole family
/// and the tokens issued from it.
///
/// At most one, not exactly one: the winner's rotation commits first, but a loser may detect
/// the reuse and revoke the session tree before the winner has checked that session, and then
/// the winner is refused too. Both outcomes are safe; what must never happen is two winners or
/// a family that survives.
fn concurrent_refreshes_without_grace_kill_the_family(servers: &[Server]) -> usize {
    let [a, b, c] = servers else {
        panic!("three servers")
    };
    register(a, "carol", PASSWORD);
    let (access, token) = password_grant(a, "carol", PASSWORD);
    let answers = race_refresh(servers, &token);
    let mut winners = Vec::new();
    for (resp, name) in answers.iter().zip(NAMES) {
        match resp.status {
            200 => winners.push(resp.json()),
            400 => assert_eq!(resp.json()["error"], "invalid_grant", "{name}: {resp:?}"),
            _ => panic!("refresh race without grace, {name}: {resp:?}"),
        }
    }
    assert!(
        winners.len() <= 1,
        "two racers rotated one token: {answers:?}"
    );
    assert!(
        answers.iter().filter(|r| r.status == 400).count() >= 2,
        "{answers:?}"
    );
    // The family is dead: the raced token, and the winner's successor if there was one.
    let resp = refresh(b, &token);
    assert_eq!(resp.status, 400, "raced token after reuse: {resp:?}");
    let mut tokens = vec![("first access token", access.as_str())];
    let winner_access;
    if let Some(w) = winners.first() {
        let resp = refresh(c, w["refresh_token"].as_str().unwrap());
        assert_eq!(resp.status, 400, "winner's successor after reuse: {resp:?}");
        assert_eq!(resp.json()["error"], "invalid_grant");
        winner_access = w["access_token"].as_str().unwrap().to_owned();
        tokens.push(("winner's access token", &winner_access));
    }
    // And so are its access tokens, on every instance.
    wait_refused(&named(servers), &tokens, Instant::now());
    winners.len()
}

/// A password change on A (authenticated with a JWT) kills every credential of the user on
/// every instance: cookie sessions at once, access JWTs as soon as the feed delivers, refresh
/// tokens at once. Returns the JWT delays.
fn password_change_kills_every_credential(servers: &[Server]) -> Vec<Refused> {
    let [a, b, c] = servers else {
        panic!("three servers")
    };
    register(b, "bob", PASSWORD);
    let (cookie_b, _) = cookie_login(b, "bob", PASSWORD);
    let (cookie_c, _) = cookie_login(c, "bob", PASSWORD);
    let (jwt_a, _) = password_grant(a, "bob", PASSWORD);
    let (jwt_c, refresh_c) = password_grant(c, "bob", PASSWORD);
    for (name, s) in named(servers) {
        for cookie in [&cookie_b, &cookie_c] {
            assert_eq!(userinfo_cookie(s, cookie).status, 200, "{name}");
        }
        for jwt in [&jwt_a, &jwt_c] {
            assert_eq!(userinfo_bearer(s, jwt).status, 200, "{name}");
        }
    }
    let body = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
    let resp = a.request(
        "POST",
        "/v1/password",
        &[("Authorization", &bearer(&jwt_a))],
        Some(("application/json", &body.to_string())),
    );
    assert_eq!(resp.status, 204, "password change on A: {resp:?}");
    let changed = Instant::now();
    // Sessions are read from the store on every use and were deleted before the answer.
    for (name, s) in named(servers) {
        for (label, cookie) in [("session made on B", &cookie_b), ("on C", &cookie_c)] {
            let resp = userinfo_cookie(s, cookie);
            assert_eq!(resp.status, 401, "{label}, used on {name}: {resp:?}");
        }
    }
    let delays = wait_refused(
        &named(servers),
        &[("JWT from A", &jwt_a), ("JWT from C", &jwt_c)],
        changed,
    );
    let resp = refresh(b, &refresh_c);
    assert_eq!(resp.status, 400, "refresh token after the change: {resp:?}");
    assert_eq!(resp.json()["error"], "invalid_grant");
    // The change itself reached the shared store: old password refused, new one accepted.
    let resp = c.post_json(
        "/v1/sessions",
        &json!({ "username": "bob", "password": PASSWORD }),
    );
    assert_eq!(resp.status, 401, "old password after the change: {resp:?}");
    cookie_login(b, "bob", NEW_PASSWORD);
    delays
}

fn report(label: &str, refused: &[Refused]) {
    for r in refused {
        println!(
            "{label}: {} refused after {:?} (poll #{})",
            r.what, r.after, r.polls
        );
    }
}

fn shared_store_scenario(feed: &str, servers: &[Server]) {
    cookie_session_is_shared_and_logout_is_instant(servers);
    let delays = jwt_revocation_reaches_every_instance(servers);
    report(&format!("[{feed}] JWT revoked on B"), &delays);
    concurrent_refreshes_within_grace_replay_once(servers);
    let delays = password_change_kills_every_credential(servers);
    report(&format!("[{feed}] password change on A"), &delays);
}

#[test]
fn instances_over_postgres_share_sessions_and_revocations_via_listen_notify() {
    let Some(deployment) = Deployment::new(false) else {
        return;
    };
    {
        let servers = deployment.start(3, &[]);
        shared_store_scenario("LISTEN/NOTIFY", &servers);
    }
    // A second trio on the same store, with the grace window disabled.
    let strict = deployment.start(3, &["--refresh-grace", "0"]);
    let winners = concurrent_refreshes_without_grace_kill_the_family(&strict);
    println!("[LISTEN/NOTIFY] refresh race without grace: {winners} winner(s) of 3");
}

#[test]
fn instances_over_postgres_and_redis_share_sessions_and_revocations_via_pubsub() {
    let Some(deployment) = Deployment::new(true) else {
        return;
    };
    let servers = deployment.start(3, &[]);
    shared_store_scenario("Redis pub/sub", &servers);
}

/// Security finding 1 across instances: the throttle's counters are shared (Redis), so 60
/// guesses at one account, released together by a barrier and spread over two instances, are
/// verified no more often than the account's limit (10) allows. (Guesses the hashing queue
/// refuses, 503, are not counted; the burst is sent again until ten were verified.) The right
/// password, sent after that, is throttled too.
#[test]
fn a_burst_of_guesses_spread_over_instances_cannot_outrun_the_throttle() {
    let Some(deployment) = Deployment::new(true) else {
        return;
    };
    let servers = deployment.start(2, &[]);
    register(&servers[0], "target", PASSWORD);
    let guess = json!({ "username": "target", "password": "definitely not the password" });
    let mut verified = 0;
    for _ in 0..5 {
        let statuses = burst(&servers, 60, &guess);
        assert!(
            statuses.iter().all(|s| [401, 429, 503].contains(s)),
            "{statuses:?}"
        );
        verified += statuses.iter().filter(|s| **s == 401).count();
        assert!(verified <= 10, "{verified} verified: {statuses:?}");
        if verified == 10 {
            break;
        }
    }
    assert_eq!(verified, 10, "the bursts never reached the limit");
    let right = json!({ "username": "target", "password": PASSWORD });
    assert_eq!(servers[1].post_json("/v1/sessions", &right).status, 429);
}

/// Sends `body` as a login `n` times at once (a barrier releases the threads together), spread
/// over the servers; returns the statuses.
fn burst(servers: &[Server], n: usize, body: &serde_json::Value) -> Vec<u16> {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (server, barrier) = (&servers[i % servers.len()], &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    server.post_json("/v1/sessions", body).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}
