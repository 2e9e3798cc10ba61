//! Attacks on the verifier's cache of verified tokens: a re-used token must be refused exactly
//! when a fresh verification would refuse it, and the cache must stay within its capacity.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::access::AccessError;
use tessera_core::jose::JoseError;
use tessera_core::revocation::Revocation;
use tessera_verify::{Verifier, VerifyError};
use tokio::sync::Barrier;

use crate::mock::{AUDIENCE, CLIENT_ID, CLIENT_SECRET, Mock, Naming, now, revocation_of};
use crate::tokens::verifier;

async fn verifier_with(
    mock: &Mock,
    tweak: impl FnOnce(tessera_verify::Builder) -> tessera_verify::Builder,
) -> Verifier {
    let builder = Verifier::builder(mock.issuer())
        .server(&mock.url)
        .audience(AUDIENCE)
        .client(CLIENT_ID, CLIENT_SECRET)
        .max_staleness(Duration::from_secs(2));
    tweak(builder).start().await.unwrap()
}

fn one_byte_off(token: &str, at: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// Polls `verify` until it refuses `token` (at most two seconds); returns the refusal.
async fn refused(v: &Verifier, token: &str) -> VerifyError {
    for _ in 0..200 {
        if let Err(e) = v.verify(token) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("still accepted after two seconds");
}

#[tokio::test]
async fn a_token_one_byte_away_from_a_cached_one_is_verified_from_scratch_and_refused() {
    let mock = Mock::start().await;
    let v = verifier(&mock).await;
    let token = mock.sign(&mock.claims("cached"));
    let first = v.verify(&token).unwrap();
    assert_eq!(v.cached_tokens(), 1);
    assert_eq!(v.verify(&token).unwrap(), first);
    let signature = token.rfind('.').unwrap() + 1;
    let payload = token.find('.').unwrap() + 1;
    for at in [signature, signature + 30, payload + 7, 5] {
        let forged = one_byte_off(&token, at);
        assert!(
            matches!(v.verify(&forged), Err(VerifyError::Invalid(_))),
            "byte {at}"
        );
    }
    assert_eq!(v.cached_tokens(), 1);
}

#[tokio::test]
async fn a_cached_token_is_refused_after_its_jti_sid_user_or_key_is_revoked() {
    let mock = Mock::start().await;
    let v = verifier(&mock).await;
    mock.wait_for_streams(1).await;
    let exp = now().plus(600);
    for (jti, naming) in [
        ("c-jti", Naming::Jti),
        ("c-sid", Naming::Sid),
        ("c-user", Naming::User),
    ] {
        let mut claims = mock.claims(jti);
        claims.sid = Some(format!("sid-of-{jti}"));
        claims.sub = if jti == "c-user" { "carol" } else { "alice" }.into();
        let token = mock.sign(&claims);
        assert!(v.verify(&token).is_ok());
        assert!(v.verify(&token).is_ok(), "{jti}: cached");
        let revocation = revocation_of(&claims, naming, exp);
        mock.revoke(&revocation);
        assert!(
            matches!(refused(&v, &token).await, VerifyError::Revoked),
            "{jti}"
        );
    }
    let token = mock.sign(&mock.claims("c-kid"));
    assert!(v.verify(&token).is_ok());
    assert!(v.verify(&token).is_ok());
    mock.revoke(&Revocation::Key {
        kid: mock.current_kid().to_owned(),
        expires_at: exp,
    });
    assert!(matches!(refused(&v, &token).await, VerifyError::Revoked));
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_key_leaves_the_jwks() {
    let mock = Mock::start().await;
    let v = verifier_with(&mock, |b| b.jwks_refresh(Duration::from_millis(50))).await;
    let token = mock.sign(&mock.claims("retired"));
    assert!(v.verify(&token).is_ok());
    assert!(v.verify(&token).is_ok());
    mock.unpublish(mock.current_kid());
    assert!(matches!(
        refused(&v, &token).await,
        VerifyError::Invalid(AccessError::Jose(JoseError::UnknownKey))
    ));
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let mock = Mock::start().await;
    let v = verifier_with(&mock, |b| b.leeway(0)).await;
    let mut claims = mock.claims("short");
    claims.exp = now().plus(2);
    let token = mock.sign(&claims);
    assert!(v.verify(&token).is_ok());
    assert!(v.verify(&token).is_ok());
    while now() < claims.exp {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(matches!(
        v.verify(&token),
        Err(VerifyError::Invalid(AccessError::Expired))
    ));
}

#[tokio::test]
async fn a_burst_of_distinct_tokens_never_grows_the_cache_past_its_capacity() {
    const CAPACITY: usize = 8;
    let mock = Mock::start().await;
    let v = verifier_with(&mock, |b| b.cache_capacity(CAPACITY)).await;
    for n in 0..3 * CAPACITY {
        let token = mock.sign(&mock.claims(&format!("burst-{n}")));
        assert!(v.verify(&token).is_ok());
        assert!(v.cached_tokens() <= CAPACITY, "#{n}: {}", v.cached_tokens());
    }
    assert!(v.cached_tokens() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_verifications_of_one_token_all_agree() {
    const TASKS: usize = 16;
    let mock = Mock::start().await;
    let v = verifier(&mock).await;
    let token = mock.sign(&mock.claims("shared"));
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (v, barrier, token) = (v.clone(), Arc::clone(&barrier), token.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                (0..20)
                    .map(|_| v.verify(&token).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let expected = mock.claims("shared").jti;
    for task in tasks {
        for claims in task.await.unwrap() {
            assert_eq!(claims.jti, expected);
            assert_eq!(claims.sub, "alice");
        }
    }
    assert_eq!(v.cached_tokens(), 1);
}
