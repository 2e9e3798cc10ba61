//! Admin commands that work on the store directly: users and signing keys.
//!
//! They reuse the server's rules through an [`AppState`](tessera_server::AppState) over the
//! same store (`--store`, `--redis`, `--namespace`), so a revocation made here is announced on
//! the same feed running servers follow, and reaches them at once.

use std::io::BufRead;

use anyhow::{Context, bail};
use tessera_core::keys::lifecycle::{MIN_PUBLISHED_SECS, Rotation};
use tessera_server::error::ApiError;
use tessera_server::service::{self, Actor};

use crate::backends::{KekSource, admin_state, open_state, read_kek_file, runtime};
use crate::cli::{KeysCommand, ScheduleArgs, StoreArgs, UsersCommand};

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
            let (state, user) = named_user(&store, &username).await?;
            let sessions = service::revoke_user_credentials(&state, &Actor::Operator, &user.id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{}",
                serde_json::json!({ "user": user.username, "sessions_revoked": sessions })
            );
            Ok(())
        }),
        UsersCommand::Disable { username, store } => runtime()?.block_on(async move {
            let (state, user) = named_user(&store, &username).await?;
            let (user, sessions) = service::disable_user(&state, &Actor::Operator, &user.id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{}",
                serde_json::json!({ "user": user.username, "disabled": user.disabled, "sessions_revoked": sessions })
            );
            Ok(())
        }),
    }
}

/// A server state over the store, and the user with this name.
async fn named_user(
    store: &StoreArgs,
    username: &str,
) -> anyhow::Result<(tessera_server::AppState, tessera_store::User)> {
    let state = admin_state(store).await?;
    let name = tessera_core::username::Username::parse(username)?;
    let Some(user) = state.store().user_by_name(name.as_str()).await? else {
        bail!("no user {name:?}")
    };
    Ok((state, user))
}

/// `tessera keys …`.
pub fn keys(command: KeysCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        match command {
            KeysCommand::List { schedule, store } => list(&store, &schedule).await,
            KeysCommand::Rotate { force, store } => rotate(&store, force).await,
            KeysCommand::Revoke { kid, store } => revoke(&store, &kid).await,
            KeysCommand::Rewrap {
                new_kek_file,
                store,
            } => rewrap(&store, &new_kek_file).await,
        }
    })
}

/// One line of JSON per key: its status, since when, and when the schedule next changes it
/// (`next_change_at`, null for retired and revoked keys).
async fn list(args: &StoreArgs, schedule: &ScheduleArgs) -> anyhow::Result<()> {
    let state = admin_state(args).await?;
    let mut config = state.config().clone();
    config.key_rotation_secs = schedule.key_rotation;
    let keys = service::signing_keys(&state, &config.key_schedule())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for k in &keys {
        println!(
            "{}",
            serde_json::json!({
                "kid": k.kid,
                "alg": k.alg,
                "status": k.status,
                "created_at": k.created_at,
                "status_since": k.status_since,
                "next_change_at": k.next_change_at,
            })
        );
    }
    Ok(())
}

/// Two-phase rotation: publish a `next` key; once it has been published long enough, make it
/// current (the old current key keeps verifying as `retiring`) and publish a new `next` —
/// refused while an older `retiring` key still verifies live tokens, unless forced. The
/// server's flow ([`service::rotate_keys`]), as `POST /v1/admin/keys/rotate` runs it.
async fn rotate(args: &StoreArgs, force: bool) -> anyhow::Result<()> {
    let state = admin_state(args).await?;
    let outcome = service::rotate_keys(&state, &Actor::Operator, force)
        .await
        .map_err(|e| match e {
            ApiError::InvalidRequest(why) => anyhow::anyhow!("{why} (--force)"),
            other => anyhow::anyhow!("{other}"),
        })?;
    let report = match outcome {
        Rotation::Published { next } => {
            serde_json::json!({ "published_next": next, "promote_after_secs": MIN_PUBLISHED_SECS })
        }
        Rotation::Promoted {
            current,
            retiring,
            next,
            retired,
        } => {
            let mut report = serde_json::json!({ "current": current, "retiring": retiring, "published_next": next });
            if let Some(map) = report.as_object_mut().filter(|_| !retired.is_empty()) {
                map.insert("retired".to_owned(), serde_json::json!(retired));
            }
            report
        }
    };
    println!("{report}");
    Ok(())
}

/// Why a rewrap is run with every instance stopped, for its report.
const STOP_FIRST: &str = "Rewrap only with every instance stopped: one still running with the \
    old KEK changes no key and logs an error until restarted, but a key it published during the \
    rewrap stays sealed under the old KEK, which the new one does not open.";

/// Re-seals every key under the KEK in `new_kek_file`. The new KEK is read before anything is
/// written, and every key is opened under the current one before any is replaced.
async fn rewrap(args: &StoreArgs, new_kek_file: &std::path::Path) -> anyhow::Result<()> {
    let new = read_kek_file(new_kek_file)?;
    let (state, source) = open_state(args, tessera_server::ServerConfig::new("http://localhost"))
        .await
        .context("opening the store with its current KEK")?;
    let count = state.rewrap_keys(&new).await.context("re-wrapping")?;
    println!(
        "{}",
        serde_json::json!({ "rewrapped": count, "kek_file": new_kek_file })
    );
    match source {
        KekSource::DefaultFile(path) | KekSource::CreatedFile(path) => eprintln!(
            "The keys are now sealed under {new}, but this store's default KEK file {old} still \
             holds the old KEK. Replace it before the next start, keeping it private, e.g.\n  \
             install -m 600 {new} {old}\nand back up the new KEK apart from the database. \
             {STOP_FIRST}",
            new = new_kek_file.display(),
            old = path.display(),
        ),
        KekSource::Given => eprintln!(
            "The keys are now sealed under {}: start every instance and admin command with it \
             (--kek-file or TESSERA_KEK); the old KEK no longer opens them. {STOP_FIRST}",
            new_kek_file.display()
        ),
        KekSource::Ephemeral => {}
    }
    Ok(())
}

/// Emergency revocation: the key stops verifying everywhere at once (the revocation goes out
/// on the feed), and if it was signing, another key takes over.
async fn revoke(args: &StoreArgs, kid: &str) -> anyhow::Result<()> {
    let state = admin_state(args).await?;
    let outcome = service::revoke_key(&state, &Actor::Operator, kid)
        .await
        .map_err(|e| match e {
            ApiError::InvalidRequest(why) => anyhow::anyhow!("{why}"),
            other => anyhow::anyhow!("{other}"),
        })?;
    if let Some(successor) = outcome.successor {
        println!("{}", serde_json::json!({ "current": successor }));
    }
    println!("{}", serde_json::json!({ "revoked": outcome.kid }));
    Ok(())
}
