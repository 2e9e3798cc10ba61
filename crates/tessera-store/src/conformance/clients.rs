//! Checks of [`crate::ClientStore`].

use std::sync::Arc;

use tessera_core::client::{ClientId, ClientRecord, ClientSecret, Scope};

use super::NOW;
use crate::{Store, StoreError};

/// A confidential client (with a fresh secret, returned) registered at `at`.
fn confidential(at: tessera_core::time::UnixTime) -> (ClientRecord, ClientSecret) {
    let secret = ClientSecret::generate().unwrap();
    let record = ClientRecord {
        id: ClientId::generate().unwrap(),
        name: "Billing — service".into(),
        scope: Scope::parse("invoices:read invoices:write openid").unwrap(),
        redirect_uris: vec![
            "https://billing.example/cb?tenant=a%20b".into(),
            "http://127.0.0.1:8123/callback".into(),
        ],
        public: false,
        first_party: true,
        dpop: false,
        secret_hash: Some(secret.hash()),
        created_at: at,
    };
    record.validate().unwrap();
    (record, secret)
}

/// A public client without scope or redirect URI, registered at `at`.
fn public(at: tessera_core::time::UnixTime) -> ClientRecord {
    let record = ClientRecord {
        id: ClientId::generate().unwrap(),
        name: "CLI".into(),
        scope: Scope::default(),
        redirect_uris: Vec::new(),
        public: true,
        first_party: false,
        dpop: true,
        secret_hash: None,
        created_at: at,
    };
    record.validate().unwrap();
    record
}

/// The listed clients among `ids`, in listing order.
async fn listed<S: Store + ?Sized>(s: &Arc<S>, ids: &[&ClientId]) -> Vec<ClientId> {
    s.clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .filter(|id| ids.contains(&id))
        .collect()
}

pub(super) async fn insert_and_look_up<S: Store + ?Sized>(s: &Arc<S>) {
    let (c, _) = confidential(NOW);
    let p = public(NOW);
    s.insert_client(&c).await.unwrap();
    s.insert_client(&p).await.unwrap();
    assert_eq!(s.client(&c.id).await.unwrap().as_ref(), Some(&c));
    assert_eq!(s.client(&p.id).await.unwrap().as_ref(), Some(&p));
    let all = s.clients().await.unwrap();
    assert_eq!(all.iter().find(|x| x.id == c.id), Some(&c));
    assert_eq!(all.iter().find(|x| x.id == p.id), Some(&p));
    let unknown = ClientId::generate().unwrap();
    assert_eq!(s.client(&unknown).await.unwrap(), None);
}

pub(super) async fn secret_hash_survives_exactly<S: Store + ?Sized>(s: &Arc<S>) {
    let (c, secret) = confidential(NOW);
    s.insert_client(&c).await.unwrap();
    let stored = s.client(&c.id).await.unwrap().unwrap();
    assert_eq!(stored.secret_hash, Some(secret.hash()));
    assert!(stored.verify_secret(secret.expose_secret()));
    let other = ClientSecret::generate().unwrap();
    assert!(!stored.verify_secret(other.expose_secret()));
    let p = public(NOW);
    s.insert_client(&p).await.unwrap();
    assert_eq!(s.client(&p.id).await.unwrap().unwrap().secret_hash, None);
}

pub(super) async fn duplicate_id_conflicts<S: Store + ?Sized>(s: &Arc<S>) {
    let (c, _) = confidential(NOW);
    s.insert_client(&c).await.unwrap();
    let mut again = public(NOW.plus(1));
    again.id = c.id.clone();
    let err = s.insert_client(&again).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict("client_id")), "{err:?}");
    assert_eq!(s.client(&c.id).await.unwrap(), Some(c));
}

pub(super) async fn list_is_ordered_by_creation_then_insertion<S: Store + ?Sized>(s: &Arc<S>) {
    let (late, _) = confidential(NOW.plus(2));
    let first = public(NOW.plus(1));
    let (second, _) = confidential(NOW.plus(1));
    let third = public(NOW.plus(1));
    for c in [&late, &first, &second, &third] {
        s.insert_client(c).await.unwrap();
    }
    assert_eq!(
        listed(s, &[&late, &first, &second, &third].map(|c| &c.id)).await,
        [&first, &second, &third, &late].map(|c| c.id.clone())
    );
}

pub(super) async fn delete_reports_whether_it_deleted<S: Store + ?Sized>(s: &Arc<S>) {
    let (gone, _) = confidential(NOW);
    let kept = public(NOW);
    s.insert_client(&gone).await.unwrap();
    s.insert_client(&kept).await.unwrap();
    assert!(s.delete_client(&gone.id).await.unwrap());
    assert_eq!(s.client(&gone.id).await.unwrap(), None);
    assert!(!s.delete_client(&gone.id).await.unwrap());
    assert!(
        !s.delete_client(&ClientId::generate().unwrap())
            .await
            .unwrap()
    );
    assert_eq!(
        listed(s, &[&gone.id, &kept.id]).await,
        std::slice::from_ref(&kept.id)
    );
    assert_eq!(s.client(&kept.id).await.unwrap().as_ref(), Some(&kept));
    // The id is free again.
    s.insert_client(&gone).await.unwrap();
    assert_eq!(s.client(&gone.id).await.unwrap(), Some(gone));
}
