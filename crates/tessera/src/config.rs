//! `--config FILE`: a TOML file whose keys are the long flags (`listen`, `issuer`, `data_dir`,
//! `store`, `redis`, `namespace`, `refresh_grace`, `kek_file`, `key_rotation`,
//! `audit_retention`, `log_format`, `drain_timeout`), except that the repeatable
//! `--trusted-proxy`, `--audience` and `--cors-origin` are the lists `trusted_proxies`,
//! `audiences` and `cors_origins`. `tessera config check FILE` validates one.
//!
//! The file's values become the flags' defaults, so precedence is: command-line flag, then
//! `TESSERA_*` environment variable, then the file, then the built-in default. The file is found
//! by scanning the arguments for `--config` (or `TESSERA_CONFIG`) before clap parses them.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{ArgMatches, Command};

/// Keys a config file may hold: each is the id of a flag (its field in `cli`).
const KEYS: &[&str] = &[
    "listen",
    "issuer",
    "data_dir",
    "store",
    "redis",
    "namespace",
    "refresh_grace",
    "trusted_proxies",
    "kek_file",
    "key_rotation",
    "audiences",
    "audit_retention",
    "log_format",
    "drain_timeout",
    "cors_origins",
];

/// The config file named on the command line or in `TESSERA_CONFIG`, if any.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let s = arg.to_string_lossy();
        if s == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(path) = s.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("TESSERA_CONFIG").map(PathBuf::from)
}

/// `(flag id, value)` pairs read from a config file; lists are comma-separated values.
pub type Settings = Vec<(&'static str, String)>;

/// Reads a config file into `(flag id, value)` pairs; lists become comma-separated values.
///
/// # Errors
/// If the file cannot be read, is not TOML, or holds an unknown key or a nested table.
pub fn read(path: &std::path::Path) -> anyhow::Result<Settings> {
    let (pairs, problems) = read_all(path)?;
    if !problems.is_empty() {
        bail!("{}: {}", path.display(), problems.join("; "));
    }
    Ok(pairs)
}

/// Reads a config file into `(flag id, value)` pairs and the problems of the keys it could
/// not take (unknown keys, values of the wrong type), every one of them.
///
/// # Errors
/// If the file cannot be read or is not TOML.
pub fn read_all(path: &std::path::Path) -> anyhow::Result<(Settings, Vec<String>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {}", path.display()))?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (key, value) in table {
        let Some(id) = KEYS.iter().find(|k| **k == key) else {
            problems.push(format!("unknown key {key:?} (known: {})", KEYS.join(", ")));
            continue;
        };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Array(items) => {
                let strings: Option<Vec<&str>> = items.iter().map(toml::Value::as_str).collect();
                match strings {
                    Some(strings) => strings.join(","),
                    None => {
                        problems.push(format!("{key}: list items must be strings"));
                        continue;
                    }
                }
            }
            other => {
                problems.push(format!(
                    "{key} must be a string, integer or list, not {}",
                    other.type_str()
                ));
                continue;
            }
        };
        out.push((*id, text));
    }
    Ok((out, problems))
}

/// Sets `defaults` on every (sub)command that has the flag.
fn with_defaults(mut cmd: Command, defaults: &[(&'static str, String)]) -> Command {
    for (id, value) in defaults {
        if cmd.get_arguments().any(|a| a.get_id() == id) {
            let value = value.clone();
            cmd = cmd.mut_arg(*id, move |a| a.default_value(value));
        }
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, |sub| with_defaults(sub, defaults));
    }
    cmd
}

/// Parses the process arguments with the config file's values as defaults.
///
/// # Errors
/// If the config file is unusable. (Bad arguments exit through clap, with status 2.)
pub fn matches(cmd: Command) -> anyhow::Result<ArgMatches> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let defaults = match config_path(&args) {
        Some(path) => read(&path)?,
        None => Vec::new(),
    };
    Ok(with_defaults(cmd, &defaults).get_matches_from(args))
}
