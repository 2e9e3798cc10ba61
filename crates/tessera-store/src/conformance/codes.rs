//! Checks of [`crate::CodeStore`].

use std::sync::Arc;

use tessera_core::authorization::{AuthorizationCode, CODE_TTL_SECS, CodeChallenge};
use tessera_core::client::{ClientId, Scope};
use tessera_core::opaque::{TokenHash, TokenKind};
use tessera_core::time::UnixTime;

use super::{NOW, id, token};
use crate::{Redemption, Store, StoreError};

/// A fresh code issued at `at`, and the hash it is stored under.
fn code(at: UnixTime) -> (TokenHash, AuthorizationCode) {
    let (_, hash) = token(TokenKind::AuthorizationCode);
    let code = AuthorizationCode {
        client_id: ClientId::generate().unwrap(),
        redirect_uri: "https://app.example/cb?x=a%20b".into(),
        user_id: id(),
        credential_epoch: 7,
        sid: id(),
        scope: Scope::parse("photos profile").unwrap(),
        // RFC 7636 Appendix B's challenge.
        challenge: CodeChallenge::parse(
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            Some("S256"),
        )
        .unwrap(),
        created_at: at,
        expires_at: at.plus(CODE_TTL_SECS),
    };
    (hash, code)
}

pub(super) async fn first_redemption_then_again<S: Store + ?Sized>(s: &Arc<S>) {
    let (hash, c) = code(NOW);
    s.insert_code(&hash, &c).await.unwrap();
    assert_eq!(
        s.redeem_code(&hash, NOW.plus(1)).await.unwrap(),
        Some(Redemption::First(c.clone()))
    );
    for _ in 0..2 {
        assert_eq!(
            s.redeem_code(&hash, NOW.plus(2)).await.unwrap(),
            Some(Redemption::Again(c.clone()))
        );
    }
    let (unknown, _) = code(NOW);
    assert_eq!(s.redeem_code(&unknown, NOW).await.unwrap(), None);
}

pub(super) async fn duplicate_hash_conflicts<S: Store + ?Sized>(s: &Arc<S>) {
    let (hash, c) = code(NOW);
    s.insert_code(&hash, &c).await.unwrap();
    let (_, other) = code(NOW);
    assert!(matches!(
        s.insert_code(&hash, &other).await,
        Err(StoreError::Conflict("code"))
    ));
    // The first code is untouched.
    assert_eq!(
        s.redeem_code(&hash, NOW).await.unwrap(),
        Some(Redemption::First(c))
    );
}

/// However many redemptions race, exactly one is the first.
pub(super) async fn concurrent_redemptions_have_one_first<S: Store + ?Sized>(s: &Arc<S>) {
    const RACERS: usize = 16;
    let (hash, c) = code(NOW);
    s.insert_code(&hash, &c).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (s, barrier) = (Arc::clone(s), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                s.redeem_code(&hash, NOW.plus(1)).await.unwrap()
            })
        })
        .collect();
    let mut firsts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Some(Redemption::First(got)) => {
                assert_eq!(got, c);
                firsts += 1;
            }
            Some(Redemption::Again(got)) => assert_eq!(got, c),
            None => panic!("the code vanished"),
        }
    }
    assert_eq!(firsts, 1);
}

pub(super) async fn sweep_removes_only_expired<S: Store + ?Sized>(s: &Arc<S>) {
    // Far from every other check's timestamps, so the count is this check's own.
    let at = UnixTime(NOW.0 - 50_000_000);
    let (old, c_old) = code(at);
    let (live, c_live) = code(at.plus(1_000));
    s.insert_code(&old, &c_old).await.unwrap();
    s.insert_code(&live, &c_live).await.unwrap();
    let swept = s
        .delete_expired_codes(at.plus(CODE_TTL_SECS + 1))
        .await
        .unwrap();
    assert!(swept >= 1);
    assert_eq!(s.redeem_code(&old, at).await.unwrap(), None);
    assert_eq!(
        s.redeem_code(&live, at).await.unwrap(),
        Some(Redemption::First(c_live))
    );
}
