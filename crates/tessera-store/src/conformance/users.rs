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
        disabled: false,
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

/// Disabling sets the flag and moves the epoch in one write, leaves everything else alone,
/// and — raced against epoch bumps — loses none of them.
pub(super) async fn disable_sets_the_flag_and_moves_the_epoch<S: Store + ?Sized>(s: &Arc<S>) {
    let u = user();
    s.create_user(&u).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let (s, barrier, id) = (Arc::clone(s), Arc::clone(&barrier), u.id.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                if i == 0 {
                    s.disable_user(&id).await.unwrap()
                } else {
                    s.bump_credential_epoch(&id).await.unwrap()
                }
            })
        })
        .collect();
    for r in racers {
        assert!(r.await.unwrap());
    }
    let stored = s.user_by_id(&u.id).await.unwrap().unwrap();
    assert!(stored.disabled);
    assert_eq!(stored.credential_epoch, 8);
    assert_eq!(stored.password_hash, u.password_hash);
    assert_eq!(s.user_by_name(&u.username).await.unwrap(), Some(stored));
    assert!(!s.disable_user(&id()).await.unwrap());
    // Another user is untouched.
    let other = user();
    s.create_user(&other).await.unwrap();
    assert!(!s.user_by_id(&other.id).await.unwrap().unwrap().disabled);
}

/// Search is a literal substring match, ordered by name, bounded by the limit: `_` and `%`
/// in the fragment are characters, not wildcards.
pub(super) async fn search_matches_substrings_in_order<S: Store + ?Sized>(s: &Arc<S>) {
    let tag = id().to_lowercase().replace(['-', '_'], "x");
    let names = [
        format!("c.{tag}_1"),
        format!("a.{tag}_2"),
        format!("b.{tag}x3"),
        format!("d.{tag}-d"),
    ];
    for name in &names {
        let mut u = user();
        u.username.clone_from(name);
        s.create_user(&u).await.unwrap();
    }
    let found = |fragment: String, limit| {
        let s = Arc::clone(s);
        async move {
            s.search_users(&fragment, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.username)
                .collect::<Vec<_>>()
        }
    };
    let all = found(tag.clone(), 10).await;
    assert_eq!(
        all,
        [&names[1], &names[2], &names[0], &names[3]].map(String::clone)
    );
    assert_eq!(found(tag.clone(), 2).await, all[..2]);
    assert_eq!(
        found(format!("{tag}_"), 10).await,
        [&names[1], &names[0]].map(String::clone)
    );
    assert!(found(format!("{tag}%"), 10).await.is_empty());
    assert_eq!(found(format!("a.{tag}"), 10).await, [names[1].clone()]);
    assert!(found(tag.clone(), 0).await.is_empty());
    assert!(found(format!("{tag}\\"), 10).await.is_empty());
    assert!(found(id(), 10).await.is_empty());
    // The empty fragment matches everyone (bounded by the limit).
    assert_eq!(found(String::new(), 3).await.len(), 3);
}
