//! The `tessera` command: parse arguments, set up logging, and hand off to the subcommand.

#![forbid(unsafe_code)]

mod admin;
mod audit;
mod backends;
mod bench;
mod bench_user;
mod cli;
mod clients;
mod config;
mod config_check;
mod jws;
mod loadgen;
mod serve;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

/// mimalloc, not the system allocator: a request allocates dozens of small blocks (header
/// maps, boxed futures, claims) and glibc's malloc spent about a quarter of an in-process
/// request in `malloc`, `free`, `realloc` and fastbin consolidation; the `usual_stack`
/// bench measures the difference (README, "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match config::matches(cli::Cli::command())
        .and_then(|m| Ok(cli::Cli::from_arg_matches(&m)?))
    {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(cli.log_format);
    match cli.command {
        cli::Command::Serve(args) => report(serve::run(args)),
        cli::Command::Jws {
            command: cli::JwsCommand::Verify { key, token },
        } => jws::verify(&key, &token),
        cli::Command::Token {
            command: cli::TokenCommand::Inspect { token },
        } => jws::inspect(&token),
        cli::Command::Users { command } => report(admin::users(command)),
        cli::Command::Keys { command } => report(admin::keys(command)),
        cli::Command::Clients { command } => report(clients::run(command)),
        cli::Command::Audit(args) => report(audit::run(args)),
        cli::Command::Bench(args) => report(bench::run(args)),
        cli::Command::Config {
            command: cli::ConfigCommand::Check { file },
        } => config_check::run(&file),
    }
}

/// Log lines to standard error, filtered by `TESSERA_LOG` (default `info`), as text or JSON.
/// In JSON each line carries its spans' fields — a request's `request_id`, method and route —
/// at the top level of `span`.
fn init_logging(format: cli::LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match format {
        // Colour only for a person at a terminal: in CI logs, files and journald the escape
        // codes are noise.
        cli::LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        cli::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
