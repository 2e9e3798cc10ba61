//! Admin commands that work on the store directly: users and signing keys.
//!
//! They reuse the server's rules through an [`AppState`](tessera_server::AppState) over the
//! same store (`--store`, `--redis`, `--namespace`), so a revocation made here is announced on
//! the same feed running servers follow, and reaches them at once.

use std::io::BufRead;

use anyhow::{Context, bail};
use tessera_core::jose::Algorithm;
use tessera_core::keys::{KeyRing, KeyStatus};
use tessera_core::revocation::Revocation;
use tessera_server::service;

use crate::backends::{admin_state, runtime};
use crate::cli::{KeysCommand, StoreArgs, UsersCommand};

/// How long a `next` key must have been published before it may sign: the JWKS is served
/// with `max-age=300`, so every verifier has seen it by then.
const MIN_PUBLISHED_SECS: i64 = 300;
/// How long a key revocation is kept: longer than any access token Tessera issues lives.
const KEY_REVOCATION_SECS: i64 = 24 * 3600;

fn read_password() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("reading the password from stdin")?;
    Ok(password.trim_end_matches(['\r', '\n']).to_owned())
}

/// `tessera users …`.
pub fn users(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        // The password comes from standard input, never argv (process list, shell history).
        UsersCommand::Create {
            username,
            admin,
            store,
        } => {
            let password = read_password()?;
            runtime()?.block_on(async move {
                let state = admin_state(&store).await?;
                let user = service::register(&state, &username, password, admin, &service::ClientContext::default())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!("{}", serde_json::json!({ "id": user.id, "username": user.username, "admin": user.is_admin }));
                Ok(())
            })
        }
        UsersCommand::Revoke { username, store } => runtime()?.block_on(async move {
            let state = admin_state(&store).await?;
            let name = tessera_core::username::Username::parse(&username)?;
            let Some(user) = state.store().user_by_name(name.as_str()).await? else {
                bail!("no user {name:?}")
            };
            let sessions = service::revoke_user(&state, &user.id, None)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{}",
                serde_json::json!({ "user": user.username, "sessions_revoked": sessions })
            );
            Ok(())
        }),
    }
}

/// `tessera keys …`.
pub fn keys(command: KeysCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        match command {
            KeysCommand::List { store } => list(&store).await,
            KeysCommand::Rotate { force, store } => rotate(&store, force).await,
            KeysCommand::Revoke { kid, store } => revoke(&store, &kid).await,
        }
    })
}

async fn list(args: &StoreArgs) -> anyhow::Result<()> {
    let state = admin_state(args).await?;
    for k in state.store().keys().await? {
        println!(
            "{}",
            serde_json::json!({ "kid": k.kid, "alg": k.alg.as_str(), "status": k.status.as_str(), "created_at": k.created_at })
        );
    }
    Ok(())
}

/// Two-phase rotation: publish a `next` key; once it has been published long enough, make it
/// current (the old current key keeps verifying as `retiring`) and publish a new `next`.
async fn rotate(args: &StoreArgs, force: bool) -> anyhow::Result<()> {
    let state = admin_state(args).await?;
    let store = state.store();
    let now = state.now();
    let records = store.keys().await?;
    let current = records.iter().find(|k| k.status == KeyStatus::Current);
    let Some(next) = records.iter().find(|k| k.status == KeyStatus::Next) else {
        let alg = current.map_or(Algorithm::EdDSA, |k| k.alg);
        let next = KeyRing::generate_record(alg, KeyStatus::Next, now)?;
        store.insert_key(&next).await?;
        println!(
            "{}",
            serde_json::json!({ "published_next": next.kid, "promote_after_secs": MIN_PUBLISHED_SECS })
        );
        return Ok(());
    };
    let age = now.since(next.created_at);
    if age < MIN_PUBLISHED_SECS && !force {
        bail!(
            "next key {} was published {age} s ago; verifiers may cache the JWKS for {MIN_PUBLISHED_SECS} s. \
             Run again later, or pass --force",
            next.kid
        );
    }
    // Demote first: at most one key is ever current (running servers keep signing with the
    // old key until they see the new one, which they already trust as `next`).
    if let Some(cur) = current {
        store.set_key_status(&cur.kid, KeyStatus::Retiring).await?;
    }
    store.set_key_status(&next.kid, KeyStatus::Current).await?;
    let following = KeyRing::generate_record(next.alg, KeyStatus::Next, now)?;
    store.insert_key(&following).await?;
    println!(
        "{}",
        serde_json::json!({ "current": next.kid, "retiring": current.map(|k| &k.kid), "published_next": following.kid })
    );
    Ok(())
}

/// Emergency revocation: the key stops verifying everywhere at once (the revocation goes out
/// on the feed), and if it was signing, another key takes over.
async fn revoke(args: &StoreArgs, kid: &str) -> anyhow::Result<()> {
    let state = admin_state(args).await?;
    let store = state.store();
    let now = state.now();
    let records = store.keys().await?;
    let Some(target) = records.iter().find(|k| k.kid == kid) else {
        bail!("no key {kid:?}")
    };
    if target.status == KeyStatus::Current {
        let successor = match records.iter().find(|k| k.status == KeyStatus::Next) {
            Some(next) => next.kid.clone(),
            None => {
                let fresh = KeyRing::generate_record(target.alg, KeyStatus::Next, now)?;
                store.insert_key(&fresh).await?;
                fresh.kid
            }
        };
        store.set_key_status(kid, KeyStatus::Retiring).await?;
        store.set_key_status(&successor, KeyStatus::Current).await?;
        println!("{}", serde_json::json!({ "current": successor }));
    }
    store.set_key_status(kid, KeyStatus::Revoked).await?;
    state
        .record_revocation(Revocation::Key {
            kid: kid.to_owned(),
            expires_at: now.plus(KEY_REVOCATION_SECS),
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}", serde_json::json!({ "revoked": kid }));
    Ok(())
}
