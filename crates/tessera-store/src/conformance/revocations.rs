//! Checks of [`crate::RevocationStore`].

use std::sync::Arc;

use tessera_core::revocation::Revocation;
use tessera_core::time::UnixTime;

use super::{NOW, id};
use crate::Store;

async fn listed<S: Store + ?Sized>(s: &Arc<S>, now: UnixTime, r: &Revocation) -> bool {
    s.revocations(now).await.unwrap().contains(r)
}

pub(super) async fn each_kind_round_trips<S: Store + ?Sized>(s: &Arc<S>) {
    let all = [
        Revocation::Token {
            jti: id(),
            expires_at: NOW.plus(600),
        },
        Revocation::Session {
            sid: id(),
            expires_at: NOW.plus(600),
        },
        Revocation::User {
            user_id: id(),
            not_before: NOW,
            expires_at: NOW.plus(600),
        },
        Revocation::Key {
            kid: id(),
            expires_at: NOW.plus(600),
        },
    ];
    for r in &all {
        s.add_revocation(r).await.unwrap();
        s.add_revocation(r).await.unwrap();
    }
    let listed = s.revocations(NOW).await.unwrap();
    for r in &all {
        assert_eq!(
            listed.iter().filter(|x| *x == r).count(),
            1,
            "{r:?} in {listed:?}"
        );
    }
    // The same key under another kind is another entry.
    let Revocation::Token { jti, .. } = &all[0] else {
        unreachable!()
    };
    let as_session = Revocation::Session {
        sid: jti.clone(),
        expires_at: NOW.plus(60),
    };
    s.add_revocation(&as_session).await.unwrap();
    assert!(listed_now(s, &all[0]).await && listed_now(s, &as_session).await);
}

async fn listed_now<S: Store + ?Sized>(s: &Arc<S>, r: &Revocation) -> bool {
    listed(s, NOW, r).await
}

pub(super) async fn upsert_keeps_the_maximum<S: Store + ?Sized>(s: &Arc<S>) {
    let user = id();
    let first = Revocation::User {
        user_id: user.clone(),
        not_before: NOW.plus(50),
        expires_at: NOW.plus(700),
    };
    let older = Revocation::User {
        user_id: user.clone(),
        not_before: NOW.plus(40),
        expires_at: NOW.plus(600),
    };
    s.add_revocation(&first).await.unwrap();
    s.add_revocation(&older).await.unwrap();
    assert!(
        listed_now(s, &first).await,
        "an older cutoff must not narrow the entry"
    );
    let mixed = Revocation::User {
        user_id: user.clone(),
        not_before: NOW.plus(60),
        expires_at: NOW.plus(650),
    };
    s.add_revocation(&mixed).await.unwrap();
    let widest = Revocation::User {
        user_id: user,
        not_before: NOW.plus(60),
        expires_at: NOW.plus(700),
    };
    assert!(listed_now(s, &widest).await);

    let jti = id();
    s.add_revocation(&Revocation::Token {
        jti: jti.clone(),
        expires_at: NOW.plus(300),
    })
    .await
    .unwrap();
    s.add_revocation(&Revocation::Token {
        jti: jti.clone(),
        expires_at: NOW.plus(100),
    })
    .await
    .unwrap();
    assert!(
        listed_now(
            s,
            &Revocation::Token {
                jti,
                expires_at: NOW.plus(300)
            }
        )
        .await
    );
}

pub(super) async fn listing_excludes_expired<S: Store + ?Sized>(s: &Arc<S>) {
    let gone = Revocation::Token {
        jti: id(),
        expires_at: NOW.plus(10),
    };
    let live = Revocation::Session {
        sid: id(),
        expires_at: NOW.plus(11),
    };
    s.add_revocation(&gone).await.unwrap();
    s.add_revocation(&live).await.unwrap();
    assert!(listed(s, NOW.plus(9), &gone).await);
    assert!(
        !listed(s, NOW.plus(10), &gone).await,
        "expired at its expires_at"
    );
    assert!(listed(s, NOW.plus(10), &live).await);
}

pub(super) async fn prune_removes_only_expired<S: Store + ?Sized>(s: &Arc<S>) {
    let far = UnixTime(3_200_000_000);
    let gone = Revocation::Token {
        jti: id(),
        expires_at: far,
    };
    let live = Revocation::User {
        user_id: id(),
        not_before: far,
        expires_at: far.plus(1),
    };
    s.add_revocation(&gone).await.unwrap();
    s.add_revocation(&live).await.unwrap();
    let pruned = s.prune_revocations(far).await.unwrap();
    assert!(pruned >= 1, "pruned {pruned}");
    assert!(
        !listed(s, UnixTime(0), &gone).await,
        "pruned entries are gone, not just hidden"
    );
    assert!(listed(s, UnixTime(0), &live).await);
}

pub(super) async fn lookup_for_a_credential_finds_only_what_it_names<S: Store + ?Sized>(
    s: &Arc<S>,
) {
    let (jti, sid, user_id, client_id) = (id(), id(), id(), id());
    let token = Revocation::Token {
        jti: jti.clone(),
        expires_at: NOW.plus(600),
    };
    let session = Revocation::Session {
        sid: sid.clone(),
        expires_at: NOW.plus(600),
    };
    let user = Revocation::User {
        user_id: user_id.clone(),
        not_before: NOW,
        expires_at: NOW.plus(600),
    };
    // A deleted client's cutoff: a principal cutoff naming the client the token was issued to.
    let client = Revocation::User {
        user_id: client_id.clone(),
        not_before: NOW,
        expires_at: NOW.plus(600),
    };
    // Named by the credential, but of another kind or expired: never found.
    let others = [
        Revocation::Key {
            kid: jti.clone(),
            expires_at: NOW.plus(600),
        },
        Revocation::Token {
            jti: sid.clone(),
            expires_at: NOW.plus(600),
        },
        Revocation::Session {
            sid: id(),
            expires_at: NOW.plus(600),
        },
    ];
    for r in [&token, &session, &user, &client]
        .into_iter()
        .chain(&others)
    {
        s.add_revocation(r).await.unwrap();
    }
    let mut found = s
        .revocations_for(&jti, Some(&sid), &user_id, Some(&client_id), NOW)
        .await
        .unwrap();
    found.sort_by_key(|r| format!("{r:?}"));
    let mut want = vec![token.clone(), session.clone(), user.clone(), client.clone()];
    want.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(found, want);
    assert_eq!(
        s.revocations_for(&jti, None, &id(), None, NOW)
            .await
            .unwrap(),
        vec![token],
        "no sid matches no session entry, no client no client cutoff"
    );
    assert_eq!(
        s.revocations_for(&id(), None, &id(), Some(&client_id), NOW)
            .await
            .unwrap(),
        vec![client],
        "a client cutoff is found by the client alone"
    );
    assert!(
        s.revocations_for(&jti, Some(&sid), &user_id, Some(&client_id), NOW.plus(600))
            .await
            .unwrap()
            .is_empty(),
        "expired entries are not in force"
    );
}
