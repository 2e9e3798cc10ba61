//! Following the revocation stream: live events, resumption, staleness and recovery.

use std::time::{Duration, Instant};

use tessera_core::revocation::Revocation;
use tessera_verify::{Verifier, VerifyError};

use crate::mock::{AUDIENCE, CLIENT_ID, CLIENT_SECRET, Mock, Naming, now, revocation_of};
use crate::tokens::verifier;

/// Polls `verify` until `done` holds for its result (at most `within`); returns the time taken.
async fn until(
    v: &Verifier,
    token: &str,
    within: Duration,
    done: impl Fn(&Result<tessera_core::access::AccessClaims, VerifyError>) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let result = v.verify(token);
        if done(&result) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "still {result:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn revoked(r: &Result<tessera_core::access::AccessClaims, VerifyError>) -> bool {
    matches!(r, Err(VerifyError::Revoked))
}

#[tokio::test]
async fn each_kind_of_revocation_pushed_on_the_stream_is_refused_within_milliseconds() {
    let mock = Mock::start().await;
    let v = verifier(&mock).await;
    mock.wait_for_streams(1).await;
    let exp = now().plus(600);
    for (jti, naming) in [
        ("by-jti", Naming::Jti),
        ("by-sid", Naming::Sid),
        ("by-user", Naming::User),
        ("by-client", Naming::Client),
    ] {
        let mut claims = mock.claims(jti);
        claims.sid = Some(format!("sid-of-{jti}"));
        match naming {
            Naming::User => claims.sub = "bob".into(),
            Naming::Client => claims.client_id = "deleted-app".into(),
            Naming::Jti | Naming::Sid => {}
        }
        let token = mock.sign(&claims);
        let revocation = revocation_of(&claims, naming, exp);
        assert!(v.verify(&token).is_ok(), "{jti} before");
        mock.revoke(&revocation);
        let took = until(&v, &token, Duration::from_secs(1), revoked).await;
        println!("{jti}: refused {took:?} after the event was sent");
        // A token the entry does not name is unaffected.
        let other = mock.sign(&mock.claims(&format!("{jti}-other")));
        assert!(v.verify(&other).is_ok(), "{jti}: collateral refusal");
    }
    // A key revocation refuses every token of the key.
    let token = mock.sign(&mock.claims("by-kid"));
    mock.revoke(&Revocation::Key {
        kid: mock.current_kid().to_owned(),
        expires_at: exp,
    });
    until(&v, &token, Duration::from_secs(1), revoked).await;
}

#[tokio::test]
async fn a_stream_ended_by_the_server_resumes_from_the_last_cursor() {
    let mock = Mock::start().await;
    let v = verifier(&mock).await;
    mock.wait_for_streams(1).await;
    let exp = now().plus(600);
    for jti in ["a", "b"] {
        mock.revoke(&Revocation::Token {
            jti: jti.into(),
            expires_at: exp,
        });
    }
    let b = mock.sign(&mock.claims("b"));
    until(&v, &b, Duration::from_secs(1), revoked).await;
    mock.end_stream();
    // Made while no stream is connected: the reconnection must not miss it.
    let cursor = mock.revoke(&Revocation::Token {
        jti: "c".into(),
        expires_at: exp,
    });
    assert_eq!(cursor, "3");
    mock.wait_for_streams(2).await;
    let c = mock.sign(&mock.claims("c"));
    until(&v, &c, Duration::from_secs(2), revoked).await;
    assert_eq!(
        mock.since(),
        [None, Some("2".to_owned())],
        "catch-up from the cursor"
    );
    assert_eq!(
        mock.last_event_ids(),
        [Some("0".to_owned()), Some("3".to_owned())],
        "each stream resumes with Last-Event-ID"
    );
    // Live events flow on the new connection too.
    mock.revoke(&Revocation::Token {
        jti: "d".into(),
        expires_at: exp,
    });
    until(
        &v,
        &mock.sign(&mock.claims("d")),
        Duration::from_secs(1),
        revoked,
    )
    .await;
}

#[tokio::test]
async fn losing_the_stream_beyond_max_staleness_fails_closed_and_recovers() {
    let mock = Mock::start().await;
    let v = verifier(&mock).await; // max_staleness 2 s
    mock.wait_for_streams(1).await;
    let token = mock.sign(&mock.claims("j"));
    assert!(v.verify(&token).is_ok());
    mock.set_down(true);
    // Within the bound the verifier still answers from the list it has.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(v.verify(&token).is_ok(), "fresh within max_staleness");
    let took = until(&v, &token, Duration::from_secs(3), |r| {
        matches!(r, Err(VerifyError::Stale))
    })
    .await;
    assert!(!v.is_fresh());
    println!("stale {took:?} after the first second of outage");
    // An invalid token is still invalid, not "unavailable".
    assert!(matches!(v.verify("x.y.z"), Err(VerifyError::Invalid(_))));
    // A revocation made during the outage is known once the verifier recovers.
    mock.revoke(&Revocation::Token {
        jti: "during".into(),
        expires_at: now().plus(600),
    });
    mock.set_down(false);
    until(&v, &token, Duration::from_secs(15), Result::is_ok).await;
    assert!(matches!(
        v.verify(&mock.sign(&mock.claims("during"))),
        Err(VerifyError::Revoked)
    ));
}

#[tokio::test]
async fn a_silent_stream_counts_as_lost() {
    let mock = Mock::start().await;
    mock.set_heartbeats(false);
    let v = Verifier::builder(mock.issuer())
        .audience(AUDIENCE)
        .client(CLIENT_ID, CLIENT_SECRET)
        .max_staleness(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let token = mock.sign(&mock.claims("j"));
    assert!(v.verify(&token).is_ok());
    until(&v, &token, Duration::from_secs(3), |r| {
        matches!(r, Err(VerifyError::Stale))
    })
    .await;
    // Heartbeats back: the silent connection is dropped after max_staleness and the next
    // one (after a catch-up) keeps the verifier fresh.
    mock.set_heartbeats(true);
    until(&v, &token, Duration::from_secs(10), Result::is_ok).await;
    mock.wait_for_streams(2).await;
}
