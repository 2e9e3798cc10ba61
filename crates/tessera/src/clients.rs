//! `tessera clients …`: the OAuth client registry, worked on in the store directly.
//!
//! Design decision: these commands open only the store (`--store`/`--data-dir`, `--redis`,
//! `--namespace`), not a server state: registering and listing a client needs no signing key,
//! so no KEK is asked for. Deleting one runs the server's flow, which revokes its tokens. The rules — ids, secrets, scopes, redirect URIs — are
//! `tessera_core::client`'s; this module parses, calls the store and prints JSON. A client
//! secret is printed once, by `create`, and exists nowhere else: the store keeps its hash.

use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::json;
use tessera_core::audit::EventKind;
use tessera_core::client::{ClientId, NewClient, Scope};
use tessera_core::time::{Clock, SystemClock};
use tessera_store::{AuditEvent, Store, StoreError};

use crate::backends::{open_backends, runtime};
use crate::cli::{ClientsCommand, StoreArgs};

/// Runs one `tessera clients` command.
pub fn run(command: ClientsCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        match command {
            ClientsCommand::Create {
                name,
                scope,
                redirect_uris,
                public,
                first_party,
                dpop,
                store,
            } => {
                let scope =
                    Scope::parse(scope.as_deref().unwrap_or_default()).context("--scope")?;
                let new = NewClient {
                    name,
                    scope,
                    redirect_uris,
                    public,
                    first_party,
                    dpop,
                };
                create(&store, new).await
            }
            ClientsCommand::List { store } => list(&store).await,
            ClientsCommand::Delete { id, store } => delete(&store, &id).await,
        }
    })
}

async fn open(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    let (store, _) = open_backends(args, Arc::new(SystemClock))
        .await
        .context("opening the store")?;
    Ok(store)
}

async fn create(args: &StoreArgs, new: NewClient) -> anyhow::Result<()> {
    // Checked before the store is opened (or created): a refused registration writes nothing.
    let (record, secret) = new.register(SystemClock.now())?;
    let store = open(args).await?;
    match store.insert_client(&record).await {
        Ok(()) => {}
        // 128 random bits: a collision means a broken generator, not bad luck.
        Err(StoreError::Conflict(_)) => bail!("client id {} already exists", record.id),
        Err(e) => return Err(e.into()),
    }
    let kind = if record.public {
        "public"
    } else {
        "confidential"
    };
    let detail = format!(
        "operator (cli): registered client {} ({:?}, {kind})",
        record.id.as_str(),
        record.name
    );
    for kind in [EventKind::ClientCreated, EventKind::Admin] {
        let event = AuditEvent {
            at: SystemClock.now(),
            kind,
            user: None,
            ip: None,
            detail: detail.clone(),
        };
        // As in the server: the registration stands even if the log cannot be written.
        if let Err(e) = store.append_event(&event).await {
            eprintln!("warning: the audit event was not stored: {e}");
        }
    }
    let out = match &secret {
        Some(secret) => {
            json!({ "client_id": record.id.as_str(), "client_secret": secret.expose_secret() })
        }
        None => json!({ "client_id": record.id.as_str() }),
    };
    println!("{out}");
    Ok(())
}

async fn list(args: &StoreArgs) -> anyhow::Result<()> {
    for c in open(args).await?.clients().await? {
        println!("{}", c.listing());
    }
    Ok(())
}

/// Deletes a client and ends its tokens: through the server's flow
/// ([`tessera_server::service::delete_client`]), so the revocation is announced on the feed
/// running instances and resource servers follow — which is why, unlike `create` and `list`,
/// this opens a server state (and so needs the KEK).
async fn delete(args: &StoreArgs, id: &str) -> anyhow::Result<()> {
    let id = ClientId::parse(id).with_context(|| format!("no client {id:?}"))?;
    let state = crate::backends::admin_state(args).await?;
    let operator = tessera_server::service::Actor::Operator;
    let existed = tessera_server::service::delete_client(&state, &id, &operator)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !existed {
        bail!("no client {:?}", id.as_str());
    }
    println!("{}", json!({ "deleted": id.as_str() }));
    Ok(())
}
