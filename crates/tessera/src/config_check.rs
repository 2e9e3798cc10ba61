//! `tessera config check FILE`: validates a `--config` file without starting anything.
//!
//! The file is read by the one loader `serve` uses ([`crate::config::read_all`]), each value
//! is parsed by the value parser of the flag it stands for (so the rules are the flags' own,
//! not a copy), and then what a start would trip over is checked without touching a store:
//! the KEK file opens, the store and Redis URLs are well-formed, the issuer is an absolute
//! `http(s)` URL. Every problem is reported, not only the first.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use tessera_store::open::redact_url;

use crate::cli::Cli;

/// Checks `file`; prints a summary (valid, exit 0) or every problem (exit 1).
pub fn run(file: &Path) -> ExitCode {
    match check(file) {
        Ok(summary) => {
            println!("{}: valid; {summary}", file.display());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("{}: {p}", file.display());
            }
            eprintln!(
                "{}: {} problem{} found",
                file.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        }
    }
}

/// The summary of a valid file, or every problem of an invalid one.
pub fn check(file: &Path) -> Result<String, Vec<String>> {
    let (pairs, mut problems) =
        crate::config::read_all(file).map_err(|e| vec![format!("{e:#}")])?;
    let root = Cli::command();
    for (id, value) in &pairs {
        if let Err(e) = parse_as_flag(&root, id, value) {
            problems.push(e);
        }
    }
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(id, _)| *id == key)
            .map(|(_, v)| v.as_str())
    };
    if let Some(path) = get("kek_file") {
        if let Err(e) = crate::backends::read_kek_file(Path::new(path)) {
            problems.push(format!("kek_file: {e:#}"));
        }
    }
    if let Some(url) = get("store") {
        if let Err(e) = store_url(url) {
            problems.push(format!("store: {e}"));
        }
    }
    for url in get("redis").into_iter().flat_map(|v| v.split(',')) {
        if let Err(e) = redis::IntoConnectionInfo::into_connection_info(url) {
            problems.push(format!("redis: {}: {e}", redact_url(url)));
        }
    }
    if let Some(issuer) = get("issuer") {
        if let Err(e) = issuer_url(issuer) {
            problems.push(format!("issuer: {e}"));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut summary = format!(
        "{} setting{}",
        pairs.len(),
        if pairs.len() == 1 { "" } else { "s" }
    );
    if !pairs.is_empty() {
        let keys: Vec<&str> = pairs.iter().map(|(id, _)| *id).collect();
        summary.push_str(&format!(" ({})", keys.join(", ")));
    }
    let store =
        get("store").map_or_else(|| "embedded SQLite under data_dir".to_owned(), redact_url);
    summary.push_str(&format!("; store: {store}"));
    let needs_kek = get("store").is_some_and(|s| s != "memory:");
    if needs_kek && get("kek_file").is_none() {
        summary.push_str("; no kek_file: this store then needs TESSERA_KEK in the environment");
    }
    Ok(summary)
}

/// Parses `value` with the flag whose id is `id` (of `serve`, or a global one): the flag is
/// copied alone into an empty command (its value parser, delimiter and range kept, its
/// environment variable dropped) and given the value, so clap applies exactly its rules.
fn parse_as_flag(root: &clap::Command, id: &str, value: &str) -> Result<(), String> {
    let serve = root.find_subcommand("serve");
    let arg = serve
        .into_iter()
        .flat_map(clap::Command::get_arguments)
        .chain(root.get_arguments())
        .find(|a| a.get_id() == id)
        .ok_or_else(|| format!("{id}: not a setting of `tessera serve`"))?;
    let long = arg
        .get_long()
        .ok_or_else(|| format!("{id}: not a setting of `tessera serve`"))?;
    let probe = clap::Command::new("tessera")
        .no_binary_name(true)
        .arg(arg.clone().env(None::<&'static str>).global(false));
    probe
        .try_get_matches_from([format!("--{long}={value}")])
        .map(drop)
        .map_err(|e| {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            format!("{id}: {}", first.trim_start_matches("error: "))
        })
}

/// A store URL's form, as `tessera_store::open` dispatches on it, without connecting.
fn store_url(url: &str) -> Result<(), String> {
    if url == "memory:" {
        return Ok(());
    }
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = path.trim_start_matches("//");
        return if path.is_empty() {
            Err(format!("{url:?} names no file"))
        } else {
            Ok(())
        };
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let parsed = url::Url::parse(url).map_err(|e| format!("{}: {e}", redact_url(url)))?;
        return if parsed.host_str().is_some_and(|h| !h.is_empty()) {
            Ok(())
        } else {
            Err(format!("{}: no host", redact_url(url)))
        };
    }
    Err(format!(
        "unsupported store URL {:?}: use sqlite://PATH, postgres://… or memory:",
        redact_url(url)
    ))
}

/// The issuer must be an absolute `http` or `https` URL without query or fragment.
fn issuer_url(issuer: &str) -> Result<(), String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("{issuer:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{issuer:?}: not an http or https URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{issuer:?}: no query or fragment allowed"));
    }
    Ok(())
}
