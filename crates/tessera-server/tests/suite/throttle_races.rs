//! The login and registration throttles attacked as an attacker would: bursts released at
//! once by a barrier, failures spread over many accounts, addresses rotated within a /64, and a
//! flood of Argon2 work.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use tessera_core::password::PasswordHasher;
use tessera_store::memory::MemoryStore;
use tokio::sync::Barrier;

use crate::common::*;

fn login_from(ip: &str, username: &str, password: &str) -> Req {
    Req::post("/v1/sessions")
        .client_ip(ip)
        .json(&json!({ "username": username, "password": password }))
}

fn password_checks(s: &TestServer) -> u64 {
    s.state
        .metrics()
        .password_checks
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Sends every request at once (a barrier releases them together); returns the answers.
async fn burst_answers(s: &Arc<TestServer>, reqs: Vec<Req>) -> Vec<Resp> {
    let barrier = Arc::new(Barrier::new(reqs.len()));
    let tasks: Vec<_> = reqs
        .into_iter()
        .map(|req| {
            let (s, barrier) = (s.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                s.send(req).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

/// [`burst_answers`]' statuses.
async fn burst(s: &Arc<TestServer>, reqs: Vec<Req>) -> Vec<StatusCode> {
    burst_answers(s, reqs)
        .await
        .into_iter()
        .map(|r| r.status)
        .collect()
}

/// Security finding 1: 100 simultaneous guesses at one account used to all be verified
/// (99 × 401, then the right password logged in). Now at most the account's limit are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_guesses_cannot_outrun_the_throttle() {
    let s = Arc::new(TestServer::new().await);
    s.register("alice", PASSWORD).await;
    let limit = s.state.config().login_limit_per_account;
    let before = password_checks(&s);
    let guesses = (0..100)
        .map(|i| {
            login_from(
                &format!("198.51.100.{}:1000", i % 200),
                "alice",
                &format!("guess number {i:04} wrong"),
            )
        })
        .collect();
    let statuses = burst(&s, guesses).await;
    let verified = password_checks(&s) - before;
    let throttled = statuses
        .iter()
        .filter(|st| **st == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(verified <= u64::from(limit), "{verified} guesses verified");
    assert_eq!(throttled, 100 - usize::try_from(verified).unwrap());
    let r = s
        .send(login_from("198.51.100.250:1000", "alice", PASSWORD))
        .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the right password, sent last"
    );
}

/// Security finding 5: logging in to one's own account every 25 tries no longer resets the
/// IP's failures — 300 failures across many accounts from one address are stopped at the
/// IP limit.
#[tokio::test]
async fn own_logins_do_not_buy_more_guesses_from_one_address() {
    let s = TestServer::new().await;
    s.register("mallory", PASSWORD).await;
    let limit = s.state.config().login_limit_per_ip;
    let mut failures_before_429 = 0;
    for i in 0..300 {
        if i % 25 == 24 {
            let r = s
                .send(login_from("203.0.113.9:1000", "mallory", PASSWORD))
                .await;
            assert!(r.status == StatusCode::CREATED || r.status == StatusCode::TOO_MANY_REQUESTS);
            continue;
        }
        let r = s
            .send(login_from(
                "203.0.113.9:1000",
                &format!("victim{i}"),
                "a wrong password here",
            ))
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        failures_before_429 += 1;
    }
    assert_eq!(failures_before_429, limit);
}

/// Security finding 5: an IPv6 client rotating through its /64 is one client.
#[tokio::test]
async fn ipv6_addresses_are_throttled_by_their_slash_64() {
    let s = TestServer::new().await;
    let limit = s.state.config().login_limit_per_ip;
    for i in 0..limit {
        let ip = format!("[2001:db8:1:2:{i:x}::1]:1000");
        let r = s
            .send(login_from(
                &ip,
                &format!("victim{i}"),
                "a wrong password here",
            ))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = s
        .send(login_from(
            "[2001:db8:1:2:ffff:1:2:3]:1000",
            "victim",
            "a wrong password here",
        ))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let r = s
        .send(login_from(
            "[2001:db8:1:3::1]:1000",
            "victim",
            "a wrong password here",
        ))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the next /64 is someone else"
    );
}

/// Security findings 6 and 12: registration is throttled per address, `409 taken` answers
/// included, so it is neither an Argon2 lever nor a fast username oracle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_throttled_per_address_taken_names_included() {
    let s = Arc::new(TestServer::new().await);
    s.register("alice", PASSWORD).await;
    let limit = usize::try_from(s.state.config().register_limit_per_ip).unwrap();
    let reqs = (0..limit + 30)
        .map(|i| {
            let name = if i % 2 == 0 {
                "alice".to_owned()
            } else {
                format!("user{i}")
            };
            Req::post("/v1/users")
                .client_ip("192.0.2.44:1000")
                .json(&json!({ "username": name, "password": PASSWORD }))
        })
        .collect();
    let statuses = burst(&s, reqs).await;
    let answered = statuses
        .iter()
        .filter(|st| **st != StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(answered, limit, "{statuses:?}");
    let r = s
        .send(
            Req::post("/v1/users")
                .client_ip("192.0.2.45:1000")
                .json(&json!({ "username": "bob", "password": PASSWORD })),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "another address is not throttled"
    );
}

/// Security finding 6: the Argon2 queue is bounded — a flood gets quick 503s with
/// `Retry-After` instead of making every login wait behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_hashing_work_is_refused_beyond_the_queue() {
    let hasher = PasswordHasher::with_cost(8 * 1024, 2).unwrap();
    let s = Arc::new(
        TestServer::with_parts(Arc::new(MemoryStore::new()), hasher, |c| {
            c.hashing_queue = 2;
            c.register_limit_per_ip = 1000;
        })
        .await,
    );
    let reqs = (0..40)
        .map(|i| {
            Req::post("/v1/users")
                .client_ip(&format!("192.0.2.{i}:1000"))
                .json(&json!({ "username": format!("flood{i}"), "password": PASSWORD }))
        })
        .collect();
    let answers = burst_answers(&s, reqs).await;
    let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status).collect();
    let refused = statuses
        .iter()
        .filter(|st| **st == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    // Every refusal tells the client when to come back.
    for r in answers
        .iter()
        .filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
    {
        let after = r.header("retry-after").expect("a 503 without Retry-After");
        assert!(after.parse::<u64>().is_ok_and(|secs| secs > 0), "{after}");
    }
    let created = statuses
        .iter()
        .filter(|st| **st == StatusCode::CREATED)
        .count();
    assert_eq!(refused + created, 40, "{statuses:?}");
    assert!(refused > 0 && created >= 2, "{statuses:?}");
    let r = s
        .send(
            Req::post("/v1/users").json(&json!({ "username": "flood_late", "password": PASSWORD })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "the queue drains");
}

/// Security finding 8: one self-registered account revoking its own JWTs one by one could add
/// an entry per token to every instance's list. Past the per-user limit the revocations
/// coalesce into one per-user cutoff: every token still dies, the list stays bounded.
#[tokio::test]
async fn revoking_many_tokens_cannot_inflate_the_revocation_list() {
    let s = TestServer::new().await;
    s.register("mallory", PASSWORD).await;
    let limit = usize::try_from(s.state.config().revocations_per_user).unwrap();
    let mut tokens = s.password_grant("mallory", PASSWORD).await;
    let mut access = Vec::new();
    for _ in 0..300 {
        access.push(tokens.access.clone());
        tokens = s.refresh(&tokens.refresh).await;
    }
    let before = s.state.revocations().len();
    for a in &access {
        assert_eq!(s.revoke(a).await.status, StatusCode::OK);
    }
    let added = s.state.revocations().len() - before;
    assert!(added <= limit + 1, "{added} entries for 300 revocations");
    for a in &access {
        assert_eq!(s.userinfo_bearer(a).await.status, StatusCode::UNAUTHORIZED);
    }
}

/// Security finding 8, for sessions: a session revocation is kept for the session's whole life
/// (finding 3: up to 30 days for an app), so one account logging in and revoking in a loop could
/// fill every instance's list for weeks. Past `revocations_per_user` within a session's life a
/// revocation lasts only as long as the session's access tokens, and the session row's
/// deletion ends the session: 20 revocations sent at once, every session dead, and past the
/// access horizon the list holds no more than the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_and_revoking_in_a_loop_cannot_inflate_the_revocation_list() {
    let s = Arc::new(TestServer::with_config(|c| c.revocations_per_user = 5).await);
    s.register("mallory", PASSWORD).await;
    let mut apps = Vec::new();
    for _ in 0..20 {
        apps.push(s.password_grant("mallory", PASSWORD).await);
    }
    let before = s.state.revocations().len();
    let revocations = apps
        .iter()
        .map(|app| Req::post("/oauth/revoke").form(&[("token", app.refresh.as_str())]))
        .collect();
    assert!(
        burst(&s, revocations)
            .await
            .iter()
            .all(|st| *st == StatusCode::OK)
    );
    let dead = |s: Arc<TestServer>, apps: Vec<AppTokens>| async move {
        for app in &apps {
            assert_eq!(
                s.refresh_raw(&app.refresh).await.status,
                StatusCode::BAD_REQUEST
            );
            assert_eq!(
                s.userinfo_bearer(&app.access).await.status,
                StatusCode::UNAUTHORIZED
            );
        }
    };
    dead(s.clone(), apps.clone()).await;
    s.advance_and_reload_revocations(631).await;
    let lasting = s.state.revocations().len() - before;
    assert!(lasting <= 5, "{lasting} lasting entries for 20 revocations");
    dead(s, apps).await;
}

/// Security finding 6: one address flooding the hashing queue — it could do so with logins to
/// its own accounts, which no throttle counts — holds half of the queue at most, so a client
/// elsewhere still gets a place; and the attempts the queue refused are taken back, so they
/// push no account towards its lock-out. 40 guesses at alice from one address, released at
/// once by a barrier against a slow hash; alice, from elsewhere, logs in meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_fill_the_hashing_queue_or_lock_out_by_it() {
    let hasher = PasswordHasher::with_cost(64 * 1024, 3).unwrap();
    let s = Arc::new(
        TestServer::with_parts(Arc::new(MemoryStore::new()), hasher, |c| {
            c.hashing_queue = 4;
        })
        .await,
    );
    s.register("alice", PASSWORD).await;
    let flood = (0..40)
        .map(|_| login_from("198.51.100.7:1000", "alice", "not her password at all"))
        .collect();
    let flooding = {
        let s = s.clone();
        tokio::spawn(async move { burst(&s, flood).await })
    };
    let refused = || {
        s.state
            .metrics()
            .hashing_refused
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while refused() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the flood overflows its share of the queue");
    let r = s
        .send(login_from("203.0.113.9:1000", "alice", PASSWORD))
        .await;
    assert!(r.status.is_success(), "{}: {}", r.status, r.text());
    let statuses = flooding.await.unwrap();
    let verified = statuses
        .iter()
        .filter(|st| **st == StatusCode::UNAUTHORIZED)
        .count();
    assert!(
        verified < s.state.config().login_limit_per_account as usize,
        "{statuses:?}"
    );
}
