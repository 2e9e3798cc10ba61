//! Opening the backends a deployment names: the store URL (or the embedded SQLite file under
//! the data directory) for durable records, and Redis URLs for sessions, revocations and
//! attempt counters shared by every instance.
//!
//! Design decision: URLs carry passwords, so none leaves this module whole. Every URL that an
//! error message (or, through it, a log line) names passes through [`redact_url`] first, and
//! [`OpenOptions`]' `Debug` shows only redacted URLs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tessera_core::time::Clock;

use crate::attempts::MemoryAttempts;
use crate::memory::MemoryStore;
use crate::{AttemptCounter, Store, StoreError};

/// The embedded database's file name under [`OpenOptions::data_dir`].
pub const DEFAULT_DB_FILE: &str = "tessera.db";

/// What to open.
#[derive(Clone)]
pub struct OpenOptions {
    /// `sqlite://PATH` (or `sqlite:PATH`), `postgres://…` (or `postgresql://…`), or `memory:`
    /// (nothing survives a restart). `None`: the SQLite file [`DEFAULT_DB_FILE`] under
    /// `data_dir`.
    pub store_url: Option<String>,
    /// Where the embedded database lives when `store_url` is `None`; created (mode 0700 on
    /// Unix) if missing.
    pub data_dir: PathBuf,
    /// Redis URLs: none for no Redis, one for a single node, several for the seed nodes of a
    /// Redis Cluster. With Redis, sessions, revocations and attempt counters live there.
    pub redis: Vec<String>,
    /// Prefix of Redis keys and name of the PostgreSQL schema, so deployments can share one
    /// server.
    pub namespace: String,
}

impl std::fmt::Debug for OpenOptions {
    // The URLs may hold passwords: show them redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("store_url", &self.store_url.as_deref().map(redact_url))
            .field("data_dir", &self.data_dir)
            .field("redis", &redact_urls(&self.redis))
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// The backends a server runs on.
#[non_exhaustive]
pub struct Backends {
    /// Every record kind.
    pub store: Arc<dyn Store>,
    /// Login attempt counters: Redis' when Redis is configured (shared by every instance),
    /// else this process's.
    pub attempts: Arc<dyn AttemptCounter>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends").finish_non_exhaustive()
    }
}

/// Why the backends could not be opened. Every URL in it is redacted ([`redact_url`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The store URL names no backend this crate knows.
    #[error("unsupported store URL {url:?}: use sqlite://PATH, postgres://… or memory:")]
    UnsupportedUrl {
        /// The URL, redacted.
        url: String,
    },
    /// The URL names a backend this build leaves out.
    #[error("{backend} support is not compiled in: build tessera-store with feature `{feature}`")]
    NotCompiled {
        /// The backend's name.
        backend: &'static str,
        /// The cargo feature of tessera-store that adds it.
        feature: &'static str,
    },
    /// The data directory could not be created.
    #[error("creating the data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The SQLite database could not be opened.
    #[error("opening the SQLite database {target}")]
    Sqlite {
        /// The file or URL.
        target: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// PostgreSQL could not be reached or prepared.
    #[error("connecting to PostgreSQL at {url}")]
    Postgres {
        /// The URL, redacted.
        url: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// Redis could not be reached.
    #[error("connecting to Redis at {urls}")]
    Redis {
        /// The URLs, redacted, comma-separated.
        urls: String,
        /// Why.
        #[source]
        source: StoreError,
    },
}

/// Opens the store and attempt counters `options` name: the durable store of
/// [`open_durable`], alone with in-process counters (timed by `clock`), or — when Redis URLs
/// are given — split with Redis ([`crate::split::SplitStore`]) and counting in Redis.
///
/// # Errors
/// [`OpenError`]: an unknown URL, a backend not compiled in, or a backend that cannot be
/// reached or opened.
pub async fn open(options: &OpenOptions, clock: Arc<dyn Clock>) -> Result<Backends, OpenError> {
    let durable = open_durable(options).await?;
    if options.redis.is_empty() {
        return Ok(Backends {
            store: durable,
            attempts: Arc::new(MemoryAttempts::new(clock)),
        });
    }
    over_redis(options, durable).await
}

/// Opens the durable store `options` name, ignoring Redis.
///
/// # Errors
/// As [`open`].
pub async fn open_durable(options: &OpenOptions) -> Result<Arc<dyn Store>, OpenError> {
    match options.store_url.as_deref() {
        Some("memory:") => Ok(Arc::new(MemoryStore::new())),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            postgres(url, &options.namespace).await
        }
        Some(url) if url.starts_with("sqlite:") => sqlite_url(url).await,
        Some(other) => Err(OpenError::UnsupportedUrl {
            url: redact_url(other),
        }),
        None => sqlite_in(&options.data_dir).await,
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite_url(url: &str) -> Result<Arc<dyn Store>, OpenError> {
    match crate::sqlite::SqliteStore::open_url(url).await {
        Ok(store) => Ok(Arc::new(store)),
        Err(source) => Err(OpenError::Sqlite {
            target: redact_url(url),
            source,
        }),
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite_in(data_dir: &Path) -> Result<Arc<dyn Store>, OpenError> {
    create_private_dir(data_dir).map_err(|source| OpenError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let path = data_dir.join(DEFAULT_DB_FILE);
    match crate::sqlite::SqliteStore::open(&path).await {
        Ok(store) => Ok(Arc::new(store)),
        Err(source) => Err(OpenError::Sqlite {
            target: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite_url(_url: &str) -> Result<Arc<dyn Store>, OpenError> {
    Err(not_compiled(SQLITE))
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite_in(_data_dir: &Path) -> Result<Arc<dyn Store>, OpenError> {
    Err(not_compiled(SQLITE))
}

#[cfg(feature = "postgres")]
async fn postgres(url: &str, namespace: &str) -> Result<Arc<dyn Store>, OpenError> {
    match crate::postgres::PostgresStore::connect(url, namespace).await {
        Ok(store) => Ok(Arc::new(store)),
        Err(source) => Err(OpenError::Postgres {
            url: redact_url(url),
            source,
        }),
    }
}

#[cfg(not(feature = "postgres"))]
async fn postgres(_url: &str, _namespace: &str) -> Result<Arc<dyn Store>, OpenError> {
    Err(not_compiled(POSTGRES))
}

#[cfg(feature = "redis")]
async fn over_redis(options: &OpenOptions, durable: Arc<dyn Store>) -> Result<Backends, OpenError> {
    use crate::redis::RedisStore;
    use crate::split::SplitStore;
    let redis = RedisStore::connect(&options.redis, &options.namespace)
        .await
        .map_err(|source| OpenError::Redis {
            urls: redact_urls(&options.redis).join(","),
            source,
        })?;
    let redis = Arc::new(redis);
    Ok(Backends {
        store: Arc::new(SplitStore::new(durable, Arc::clone(&redis))),
        attempts: redis,
    })
}

#[cfg(not(feature = "redis"))]
async fn over_redis(
    _options: &OpenOptions,
    _durable: Arc<dyn Store>,
) -> Result<Backends, OpenError> {
    Err(not_compiled(REDIS))
}

/// A backend's display name and cargo feature.
type Feature = (&'static str, &'static str);
#[cfg_attr(feature = "sqlite", allow(dead_code))]
const SQLITE: Feature = ("SQLite", "sqlite");
#[cfg_attr(feature = "postgres", allow(dead_code))]
const POSTGRES: Feature = ("PostgreSQL", "postgres");
#[cfg_attr(feature = "redis", allow(dead_code))]
const REDIS: Feature = ("Redis", "redis");

/// The error for a backend this build leaves out.
#[cfg_attr(
    all(feature = "sqlite", feature = "postgres", feature = "redis"),
    allow(dead_code)
)]
fn not_compiled((backend, feature): Feature) -> OpenError {
    OpenError::NotCompiled { backend, feature }
}

/// Creates `dir` (and its parents) readable by its owner only; an existing directory is left
/// as it is.
#[cfg(feature = "sqlite")]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// `url` with its credentials masked, fit for a log line or an error message: the password in
/// the userinfo (`scheme://user:PASSWORD@host`) and the value of any query parameter whose
/// name ends in `password` (`?password=…`, `?sslpassword=…`) become `***`.
///
/// Conservative by design: everything between `://` and the *last* `@` counts as userinfo,
/// so a password holding a raw `/`, `?` or `@` is still masked. Text that is not a URL comes
/// back unchanged.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let masked = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
                None => url.to_owned(),
            },
            None => url.to_owned(),
        },
        None => url.to_owned(),
    };
    match masked.split_once('?') {
        Some((base, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _)) if name.to_ascii_lowercase().ends_with("password") => {
                        format!("{name}=***")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => masked,
    }
}

/// Each of `urls`, redacted.
fn redact_urls(urls: &[String]) -> Vec<String> {
    urls.iter().map(|u| redact_url(u)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::error::Error;

    use tessera_core::time::SystemClock;

    use super::*;

    /// The error and every source below it, as one string (what `{:#}` of anyhow prints).
    fn chain(e: &OpenError) -> String {
        let first: &(dyn Error + 'static) = e;
        std::iter::successors(Some(first), |&e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ")
    }

    /// The error of an open that must fail.
    fn failed<T>(result: Result<T, OpenError>) -> OpenError {
        match result {
            Ok(_) => panic!("opened"),
            Err(e) => e,
        }
    }

    fn options(store_url: Option<&str>, redis: &[&str]) -> OpenOptions {
        OpenOptions {
            store_url: store_url.map(str::to_owned),
            data_dir: PathBuf::from("/nonexistent/tessera-data"),
            redis: redis.iter().map(|u| (*u).to_owned()).collect(),
            namespace: "tessera".into(),
        }
    }

    #[test]
    fn passwords_in_userinfo_are_masked() {
        for (url, want) in [
            (
                "redis://user:secret@127.0.0.1:6379/0",
                "redis://user:***@127.0.0.1:6379/0",
            ),
            ("redis://:secret@h:1", "redis://:***@h:1"),
            (
                "postgres://app:s3cr%40t@db.internal:5432/tessera",
                "postgres://app:***@db.internal:5432/tessera",
            ),
            // Raw reserved characters in the password: still masked, up to the last `@`.
            (
                "postgresql://u:p@ss/w?rd@host/db",
                "postgresql://u:***@host/db",
            ),
            ("rediss://u:a:b@host", "rediss://u:***@host"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn password_parameters_are_masked() {
        assert_eq!(
            redact_url("postgres://db/tessera?user=app&password=secret&sslmode=require"),
            "postgres://db/tessera?user=app&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://u:pw@db/t?sslpassword=k"),
            "postgres://u:***@db/t?sslpassword=***"
        );
    }

    #[test]
    fn urls_without_credentials_are_unchanged() {
        for url in [
            "redis://127.0.0.1:6379",
            "redis://user@host",
            "postgres://postgres@127.0.0.1:5432/test",
            "sqlite:///var/lib/tessera/tessera.db",
            "sqlite:tessera.db",
            "memory:",
            "not a url",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn debug_of_options_shows_no_password() {
        let o = options(Some("postgres://u:secret@db/t"), &["redis://:secret@r:1"]);
        let shown = format!("{o:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("postgres://u:***@db/t"), "{shown}");
    }

    #[tokio::test]
    async fn unknown_urls_are_refused_redacted() {
        let err = failed(open_durable(&options(Some("mysql://u:secret@h/db"), &[])).await);
        assert!(matches!(err, OpenError::UnsupportedUrl { .. }), "{err:?}");
        assert!(!chain(&err).contains("secret"), "{err}");
    }

    #[test]
    fn a_missing_backend_names_its_feature() {
        let err = not_compiled(POSTGRES);
        assert_eq!(
            err.to_string(),
            "PostgreSQL support is not compiled in: build tessera-store with feature `postgres`"
        );
    }

    #[tokio::test]
    async fn memory_without_redis_counts_in_process() {
        let backends = open(&options(Some("memory:"), &[]), Arc::new(SystemClock))
            .await
            .unwrap();
        assert_eq!(backends.attempts.hit("k", 60).await.unwrap().0, 1);
        assert!(backends.store.keys().await.unwrap().is_empty());
    }

    /// Without a store URL, the SQLite file lives in a data directory created readable by its
    /// owner only.
    #[cfg(all(unix, feature = "sqlite"))]
    #[tokio::test]
    async fn default_store_is_sqlite_in_a_private_data_dir() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(None, &[]);
        o.data_dir = dir.path().join("nested").join("data");
        let store = open_durable(&o).await.unwrap();
        assert!(store.keys().await.unwrap().is_empty());
        assert!(o.data_dir.join(DEFAULT_DB_FILE).is_file());
        let mode = std::fs::metadata(&o.data_dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "mode {mode:o}");
    }

    /// Regression guard for a leaked credential: a Redis that cannot be reached is reported
    /// with its URL, but never with its password.
    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn unreachable_redis_error_hides_the_password() {
        let err = open(
            &options(Some("memory:"), &["redis://user:secret@127.0.0.1:1"]),
            Arc::new(SystemClock),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, OpenError::Redis { .. }), "{err:?}");
        let text = chain(&err);
        assert!(!text.contains("secret"), "{text}");
        assert!(!format!("{err:?}").contains("secret"), "{err:?}");
        assert!(text.contains("redis://user:***@127.0.0.1:1"), "{text}");

        // A malformed URL neither.
        let err = failed(
            open(
                &options(Some("memory:"), &["redis://user:secret@127.0.0.1:port"]),
                Arc::new(SystemClock),
            )
            .await,
        );
        assert!(!chain(&err).contains("secret"), "{}", chain(&err));
        assert!(!format!("{err:?}").contains("secret"), "{err:?}");
    }

    /// The same for PostgreSQL, and for a cluster's seed list.
    #[cfg(all(feature = "postgres", feature = "redis"))]
    #[tokio::test]
    async fn unreachable_postgres_and_cluster_errors_hide_passwords() {
        let err =
            failed(open_durable(&options(Some("postgres://app:secret@127.0.0.1:1/db"), &[])).await);
        assert!(matches!(err, OpenError::Postgres { .. }), "{err:?}");
        assert!(!chain(&err).contains("secret"), "{}", chain(&err));
        assert!(!format!("{err:?}").contains("secret"), "{err:?}");
        let malformed = "postgres://app:secret@127.0.0.1:port/db";
        let err = failed(open_durable(&options(Some(malformed), &[])).await);
        assert!(!chain(&err).contains("secret"), "{}", chain(&err));
        assert!(!format!("{err:?}").contains("secret"), "{err:?}");

        let seeds = ["redis://:secret@127.0.0.1:1", "redis://:secret@127.0.0.1:2"];
        let err = open(&options(Some("memory:"), &seeds), Arc::new(SystemClock))
            .await
            .unwrap_err();
        assert!(!chain(&err).contains("secret"), "{}", chain(&err));
        assert!(!format!("{err:?}").contains("secret"), "{err:?}");
    }
}
