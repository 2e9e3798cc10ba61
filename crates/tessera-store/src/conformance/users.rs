//! Checks of [`crate::UserStore`].

use std::sync::Arc;

use super::{NOW, id};
use crate::{Store, StoreError, User};

fn user() -> User {
    User {
        id: id(),
        username: format!("user-{}", id()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        is_admin: false,
        created_at: NOW,
        credential_epoch: 0,
    }
}

pub(super) async fn create_and_look_up<S: Store + ?Sized>(s: &Arc<S>) {
    let mut u = user();
    u.is_admin = true;
    s.create_user(&u).await.unwrap();
    assert_eq!(s.user_by_name(&u.username).await.unwrap(), Some(u.clone()));
    assert_eq!(s.user_by_id(&u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(s.user_by_name(&id()).await.unwrap(), None);
    assert_eq!(s.user_by_id(&id()).await.unwrap(), None);
}

pub(super) async fn duplicate_username_conflicts<S: Store + ?Sized>(s: &Arc<S>) {
    let u = user();
    s.create_user(&u).await.unwrap();
    let mut again = user();
    again.username.clone_from(&u.username);
    let err = s.create_user(&again).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict("username")), "{err:?}");
    assert_eq!(s.user_by_id(&again.id).await.unwrap(), None);
    assert_eq!(s.user_by_name(&u.username).await.unwrap(), Some(u));
}

pub(super) async fn set_password_hash<S: Store + ?Sized>(s: &Arc<S>) {
    let u = user();
    s.create_user(&u).await.unwrap();
    assert!(s.set_password_hash(&u.id, "new-hash").await.unwrap());
    assert_eq!(
        s.user_by_id(&u.id).await.unwrap().unwrap().password_hash,
        "new-hash"
    );
    assert!(!s.set_password_hash(&id(), "x").await.unwrap());
}

/// Concurrent epoch bumps (released together by a barrier) are each counted: an action that
/// ends a user's credentials can never be lost to another one racing it.
pub(super) async fn credential_epoch_counts_every_bump<S: Store + ?Sized>(s: &Arc<S>) {
    let u = user();
    s.create_user(&u).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let racers: Vec<_> = (0..16)
        .map(|_| {
            let (s, barrier, id) = (Arc::clone(s), Arc::clone(&barrier), u.id.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                s.bump_credential_epoch(&id).await.unwrap()
            })
        })
        .collect();
    for r in racers {
        assert!(r.await.unwrap());
    }
    let stored = s.user_by_id(&u.id).await.unwrap().unwrap();
    assert_eq!(stored.credential_epoch, 16);
    assert_eq!(
        stored.password_hash, u.password_hash,
        "nothing else changed"
    );
    assert!(!s.bump_credential_epoch(&id()).await.unwrap());
}
