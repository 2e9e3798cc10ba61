//! Opening the store the flags name, and the key-encryption key (KEK) that seals its signing
//! keys, for `serve` and for the admin commands.
//!
//! Where the KEK comes from, first match wins:
//! 1. `--kek-file PATH` (`TESSERA_KEK_FILE`, config `kek_file`): the file's base64 KEK;
//! 2. `TESSERA_KEK`: the base64 KEK itself (never a flag: argv is visible to every user);
//! 3. no `--store` (the embedded SQLite under `--data-dir`): the file `kek` in the data
//!    directory, beside the database file, created `0600` from the OS CSPRNG on first start;
//! 4. `memory:`: a KEK that lives as long as the process, like the keys it seals;
//! 5. any other store is refused: its keys outlive the process and are shared by instances,
//!    which must all be given the same KEK, so none may be made up here.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use tessera_core::keys::kek::Kek;
use tessera_core::password::PasswordHasher;
use tessera_core::time::{Clock, SystemClock};
use tessera_server::{AppState, ServerConfig};
use tessera_store::open::{self, Backends, OpenOptions};
use tessera_store::{AttemptCounter, Store};

use crate::cli::StoreArgs;

/// The default KEK file's name under `--data-dir`.
pub const DEFAULT_KEK_FILE: &str = "kek";

/// The store and login counters named by the flags: `--store` (or the embedded SQLite file
/// under `--data-dir`) for durable records, with `--redis` taking over sessions,
/// revocations and counters when given. See [`tessera_store::open`].
pub async fn open_backends(
    args: &StoreArgs,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn AttemptCounter>)> {
    let options = OpenOptions {
        store_url: args.store.clone(),
        data_dir: args.data_dir.clone(),
        redis: args.redis.clone(),
        namespace: args.namespace.clone(),
    };
    let Backends {
        store, attempts, ..
    } = open::open(&options, clock).await?;
    Ok((store, attempts))
}

/// Where the KEK in use came from.
#[derive(Debug)]
pub enum KekSource {
    /// `--kek-file` or `TESSERA_KEK`: the operator manages it.
    Given,
    /// The data directory's `kek` file, which existed already.
    DefaultFile(PathBuf),
    /// The data directory's `kek` file, created by this start.
    CreatedFile(PathBuf),
    /// Made for this process (`memory:`).
    Ephemeral,
}

/// Reads a KEK file.
///
/// # Errors
/// If the file cannot be read or does not hold a KEK.
pub fn read_kek_file(path: &Path) -> anyhow::Result<Kek> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading the KEK file {}", path.display()))?,
    );
    Kek::from_base64(&text).with_context(|| format!("KEK file {}", path.display()))
}

/// The KEK for the store the flags name, by the rules of this module.
///
/// # Errors
/// If the named KEK is unreadable, both sources are given, or the store needs a KEK and none
/// is given.
pub fn resolve_kek(args: &StoreArgs) -> anyhow::Result<(Option<Kek>, KekSource)> {
    let from_env = std::env::var("TESSERA_KEK")
        .ok()
        .map(zeroize::Zeroizing::new);
    match (&args.kek_file, from_env) {
        (Some(_), Some(_)) => {
            bail!("both --kek-file (or TESSERA_KEK_FILE) and TESSERA_KEK are set: give one")
        }
        (Some(path), None) => return Ok((Some(read_kek_file(path)?), KekSource::Given)),
        (None, Some(text)) => {
            return Ok((
                Some(Kek::from_base64(&text).context("TESSERA_KEK")?),
                KekSource::Given,
            ));
        }
        (None, None) => {}
    }
    match args.store.as_deref() {
        None => default_kek_file(&args.data_dir.join(DEFAULT_KEK_FILE)),
        Some("memory:") => Ok((None, KekSource::Ephemeral)),
        Some(_) => bail!(
            "this store keeps its signing keys sealed under a key-encryption key: pass \
             --kek-file PATH (or TESSERA_KEK_FILE, or the base64 KEK in TESSERA_KEK), the same \
             for every instance and admin command; make one with `openssl rand -base64 32`"
        ),
    }
}

/// Reads the data directory's KEK file, creating it (`0600`, from the OS CSPRNG) if absent.
fn default_kek_file(path: &Path) -> anyhow::Result<(Option<Kek>, KekSource)> {
    if path.exists() {
        return Ok((
            Some(read_kek_file(path)?),
            KekSource::DefaultFile(path.to_owned()),
        ));
    }
    if let Some(dir) = path.parent() {
        // Private, as the store would make it (this runs before the store is opened).
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let kek = Kek::generate().context("generating the KEK")?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(format!("{}\n", kek.to_base64().as_str()).as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing the KEK file {}", path.display()))?;
            tracing::info!(path = %path.display(), "created the key-encryption key file: back it up, apart from the database");
            Ok((Some(kek), KekSource::CreatedFile(path.to_owned())))
        }
        // Another process starting on the same directory made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((
            Some(read_kek_file(path)?),
            KekSource::DefaultFile(path.to_owned()),
        )),
        Err(e) => Err(e).with_context(|| format!("creating the KEK file {}", path.display())),
    }
}

/// A multi-threaded runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// Server state over the flags' store, with its KEK in `config`. A KEK file this start created
/// is removed again if the state cannot start (the store holds keys sealed under another
/// KEK), so a restored or replaced `kek` file is never shadowed by a made-up one.
///
/// # Errors
/// If the store, the KEK or the stored keys are unusable.
pub async fn open_state(
    args: &StoreArgs,
    mut config: ServerConfig,
) -> anyhow::Result<(AppState, KekSource)> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (kek, source) = resolve_kek(args)?;
    config.kek = kek;
    let started = async {
        let (store, attempts) = open_backends(args, Arc::clone(&clock)).await?;
        let hasher = PasswordHasher::owasp().context("password hasher")?;
        AppState::with_attempts(store, attempts, config, clock, hasher)
            .await
            .context("starting")
    }
    .await;
    match started {
        Ok(state) => Ok((state, source)),
        Err(e) => {
            if let KekSource::CreatedFile(path) = &source {
                if let Err(rm) = std::fs::remove_file(path) {
                    tracing::warn!(path = %path.display(), error = %rm, "removing the KEK file this start created");
                }
            }
            Err(e)
        }
    }
}

/// Server state over the flags' store, for admin commands that reuse the server's rules
/// (registration, revocation) without serving.
pub async fn admin_state(args: &StoreArgs) -> anyhow::Result<AppState> {
    Ok(open_state(args, ServerConfig::new("http://localhost"))
        .await
        .context("opening the store")?
        .0)
}
