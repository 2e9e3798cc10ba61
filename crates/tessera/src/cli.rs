//! The command-line grammar. Every `serve` flag has a `TESSERA_*` environment twin.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tessera_server::IpNet;

/// Tessera: session tokens and JWTs, both done safely.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log lines on standard error as text, or as one JSON object per line.
    #[arg(
        long,
        global = true,
        env = "TESSERA_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable text (coloured at a terminal).
    Text,
    /// One JSON object per line, with the request's span (its `request_id`) on each.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Compact JWS tools.
    Jws {
        /// What to do with a JWS.
        #[command(subcommand)]
        command: JwsCommand,
    },
    /// Token tools.
    Token {
        /// What to do with a token.
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// User administration (works on the store directly).
    Users {
        /// What to do with users.
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Signing-key administration (works on the store directly).
    Keys {
        /// What to do with keys.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// OAuth client registry (works on the store directly).
    Clients {
        /// What to do with clients.
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// The audit log: security events, newest first, one per line (reads the store directly).
    Audit(AuditArgs),
    /// Measure Tessera in this process: instances on each reachable store, driven over
    /// loopback HTTP; writes a Markdown report and SVG charts.
    Bench(BenchArgs),
    /// Configuration files.
    Config {
        /// What to do with a config file.
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

/// `tessera config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a `--config` file without starting anything: every key known, every value
    /// one its flag takes, the KEK file readable, the store URLs well-formed. Exit status 0
    /// with a summary when valid, 1 with every problem found otherwise.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

/// `tessera bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Directory for `report.md` and the SVG charts (created if missing).
    #[arg(long, default_value = "./tessera-bench")]
    pub out: PathBuf,
    /// Keep-alive connections of the load generator (default 16; 4 with `--quick`).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Distinct credentials in the "many" runs (default 1000; 100 with `--quick`).
    #[arg(long)]
    pub credentials: Option<usize>,
    /// Length of each load run, e.g. `3s` or `500ms` (default 3s; 400ms with `--quick`).
    #[arg(long, value_parser = crate::bench::parse_run_duration)]
    pub duration: Option<std::time::Duration>,
    /// Short runs: a smoke test that finishes in well under a minute.
    #[arg(long)]
    pub quick: bool,
    /// The stores to measure, comma-separated. PostgreSQL is `TESSERA_BENCH_POSTGRES`
    /// (default `postgres://postgres@127.0.0.1:5432/test`), Redis `TESSERA_BENCH_REDIS`
    /// (default `redis://127.0.0.1:6379`); one that does not answer is reported as skipped.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "memory,sqlite,postgres,redis"
    )]
    pub stores: Vec<BenchStore>,
}

/// A store `tessera bench` can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchStore {
    /// In-process memory.
    Memory,
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh schema in PostgreSQL, dropped afterwards.
    Postgres,
    /// Redis for sessions and revocations (fresh namespace, deleted afterwards), with
    /// PostgreSQL (or, if it does not answer, SQLite) for the durable records.
    Redis,
}

impl BenchStore {
    /// The name used in the report.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Redis => "redis",
        }
    }
}

/// Where the data lives; shared by every command that opens the store.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory for the embedded store when `--store` is not given.
    #[arg(long, env = "TESSERA_DATA_DIR", default_value = "./tessera-data")]
    pub data_dir: PathBuf,
    /// Store URL: `sqlite://PATH`, `postgres://…`, or `memory:` (nothing survives a restart).
    #[arg(long, env = "TESSERA_STORE")]
    pub store: Option<String>,
    /// Redis URL(s) for sessions, revocations and login counters; several comma-separated
    /// URLs name the seed nodes of a Redis Cluster.
    #[arg(long, env = "TESSERA_REDIS", value_delimiter = ',')]
    pub redis: Vec<String>,
    /// Prefix of Redis keys and PostgreSQL schema, so deployments can share one server.
    #[arg(long, env = "TESSERA_NAMESPACE", default_value = "tessera")]
    pub namespace: String,
    /// File holding the key-encryption key (standard base64 of 32 bytes) that seals the
    /// signing keys in the store. The KEK itself may instead be given in `TESSERA_KEK`.
    /// Default: for the embedded store, the file `kek` under `--data-dir` (created on first
    /// start); for `memory:`, a KEK that lives as long as the process; other stores need one.
    #[arg(long, env = "TESSERA_KEK_FILE", value_name = "PATH")]
    pub kek_file: Option<PathBuf>,
    /// TOML file of settings (keys: the long flags, e.g. `listen`, `store`); flags and
    /// `TESSERA_*` variables take precedence over it.
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
}

/// `tessera serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TESSERA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Public base URL (`iss`, discovery links). Default: `http://` + the listen address.
    #[arg(long, env = "TESSERA_ISSUER")]
    pub issuer: Option<String>,
    /// Seconds in which a retried refresh token returns the same successor (0 disables).
    #[arg(long, env = "TESSERA_REFRESH_GRACE", default_value_t = 10, value_parser = clap::value_parser!(i64).range(0..=300))]
    pub refresh_grace: i64,
    /// A proxy (address or CIDR network) whose `Forwarded`/`X-Forwarded-For` headers name the
    /// client; repeatable, or comma-separated. Without one, those headers are ignored.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "TESSERA_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<IpNet>,
    /// An audience token exchange may issue access tokens for (besides the issuer itself);
    /// repeatable, or comma-separated.
    #[arg(
        long = "audience",
        value_name = "AUD",
        env = "TESSERA_AUDIENCE",
        value_delimiter = ','
    )]
    pub audiences: Vec<String>,
    /// On SIGTERM or Ctrl-C, how long in-flight requests may take to finish (seconds) before
    /// the server exits anyway.
    #[arg(long, env = "TESSERA_DRAIN_TIMEOUT", default_value_t = 20, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub drain_timeout: u64,
    /// An origin (`https://app.example`) whose pages may call the API from a browser (CORS,
    /// credentials allowed); repeatable, or comma-separated. Default: none.
    #[arg(
        long = "cors-origin",
        value_name = "ORIGIN",
        env = "TESSERA_CORS_ORIGIN",
        value_delimiter = ',',
        value_parser = tessera_server::cors::CorsOrigin::parse
    )]
    pub cors_origins: Vec<tessera_server::cors::CorsOrigin>,
    /// The signing-key schedule.
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    /// How long audit events are kept (seconds, or a number with a unit `s`, `m`, `h`, `d`
    /// or `w`); older ones are deleted by the periodic sweep.
    #[arg(long, env = "TESSERA_AUDIT_RETENTION", default_value = "90d", value_name = "DURATION", value_parser = parse_duration)]
    pub audit_retention: i64,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `tessera audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this user's events.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Only events from the last DURATION (e.g. `30m`, `24h`, `7d`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<i64>,
    /// Only events of this kind (`login`, `login_failed`, `logout`, `session_revoked`,
    /// `refresh_reuse`, `password_changed`, `user_disabled`, `key_rotated`, `key_revoked`,
    /// `client_created`, `client_deleted`, `admin`).
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// At most this many events (the newest).
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The automatic signing-key rotation schedule.
#[derive(Debug, Clone, Args)]
pub struct ScheduleArgs {
    /// How long a signing key signs before the server rotates to the next by itself: seconds,
    /// or a number with a unit `s`, `m`, `h`, `d` or `w` (e.g. `30d`, `12h`). The next key is
    /// published half this period (at most 5 minutes) before it signs.
    #[arg(long, env = "TESSERA_KEY_ROTATION", default_value = "30d", value_name = "DURATION", value_parser = parse_duration)]
    pub key_rotation: i64,
}

/// The longest rotation period accepted: ten years.
const MAX_ROTATION_SECS: i64 = 10 * 365 * 24 * 3600;

/// Parses `SECONDS` or `N` followed by `s`, `m`, `h`, `d` or `w` into seconds, 1 s to ten years.
fn parse_duration(text: &str) -> Result<i64, String> {
    let (digits, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 24 * 3600,
        "w" => 7 * 24 * 3600,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h, d or w")),
    };
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(per))
        .filter(|secs| (1..=MAX_ROTATION_SECS).contains(secs))
        .ok_or_else(|| format!("{text:?} is not a duration from 1s to 3650d"))
}

/// `tessera jws …`.
#[derive(Debug, Subcommand)]
pub enum JwsCommand {
    /// Verify a compact JWS against one JWK and print its payload (possibly empty).
    /// Exit status: 0 valid, 1 invalid, 2 usage error (including a JWK whose `use` or
    /// `key_ops` forbid verifying).
    Verify {
        /// File holding the JWK (public or private; only the public part is used).
        #[arg(long)]
        key: PathBuf,
        /// The compact JWS.
        token: String,
    },
}

/// `tessera token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Decode any token without trusting it, and flag risky choices (including an HMAC secret
    /// found among commonly used ones). Exit status: 1 if any finding is DANGER, else 0.
    Inspect {
        /// The token (JWT, or a Tessera opaque token).
        token: String,
    },
}

/// `tessera users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is read from standard input (first line).
    Create {
        /// Login name.
        username: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke every credential of a user: sessions, refresh tokens, access tokens.
    Revoke {
        /// Login name.
        username: String,
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable a user: every credential ends at once, and their logins are refused.
    Disable {
        /// Login name.
        username: String,
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `tessera keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys, their status and when the schedule next changes it.
    List {
        /// The schedule the servers run (to tell when each key's status next changes).
        #[command(flatten)]
        schedule: ScheduleArgs,
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Rotate: publish a `next` key, or — once it has been published for 5 minutes — make it
    /// current, keep the old one verifying as `retiring`, and publish a new `next`. The JWKS
    /// holds at most three keys: while an older `retiring` key still verifies live tokens, the
    /// promotion is refused, saying when that key retires.
    Rotate {
        /// Promote the `next` key even if it was published less than 5 minutes ago, and retire
        /// an older `retiring` key early (its tokens stop verifying).
        #[arg(long)]
        force: bool,
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Re-encrypt every signing key under a new key-encryption key. Stop every instance
    /// first; afterwards only the new KEK opens the store: restart every instance with it.
    Rewrap {
        /// File holding the new KEK (standard base64 of 32 bytes, e.g. from
        /// `openssl rand -base64 32`).
        #[arg(long, value_name = "PATH")]
        new_kek_file: PathBuf,
        /// The store (and its current KEK).
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Emergency revocation: tokens signed by KID are refused at once, everywhere.
    Revoke {
        /// The key id. Key ids are base64url, so one may start with `-`.
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `tessera clients …`.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client and print its `client_id` and — for a confidential client, once and
    /// never again — its `client_secret`, as JSON.
    Create {
        /// A human name (1-100 characters).
        name: String,
        /// The scopes the client may be granted, space-separated (e.g. "read write").
        /// Default: none.
        #[arg(long)]
        scope: Option<String>,
        /// An exact redirect URI: https, or http on a loopback host; no fragment. Repeatable.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// A public client (browser or native app): no secret.
        #[arg(long)]
        public: bool,
        /// A first-party client: no consent screen.
        #[arg(long)]
        first_party: bool,
        /// The client's tokens must be bound to a DPoP key (RFC 9449).
        #[arg(long)]
        dpop: bool,
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print every client as JSON, one per line, oldest first (never a secret or its hash).
    List {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a client: its tokens are revoked on every instance, then the registration goes.
    Delete {
        /// The client id. Client ids are base64url, so one may start with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{Cli, Command, parse_duration};

    fn serve(args: &[&str]) -> Result<super::ServeArgs, clap::Error> {
        let argv = ["tessera", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(a) => Ok(a),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn audit_retention_defaults_to_90_days_and_takes_a_duration() {
        assert_eq!(serve(&[]).unwrap().audit_retention, 90 * 86_400);
        let week = serve(&["--audit-retention", "7d"]).unwrap();
        assert_eq!(week.audit_retention, 7 * 86_400);
        assert!(serve(&["--audit-retention", "forever"]).is_err());
    }

    #[test]
    fn durations_take_seconds_or_a_unit() {
        for (text, secs) in [
            ("3", 3),
            ("3s", 3),
            ("90m", 5_400),
            ("12h", 43_200),
            ("30d", 2_592_000),
            ("2w", 1_209_600),
        ] {
            assert_eq!(parse_duration(text), Ok(secs), "{text}");
        }
        for bad in [
            "",
            "0",
            "0s",
            "s",
            "-1",
            "1y",
            "1.5h",
            "3 s",
            "3651d",
            "99999999999999999999",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
