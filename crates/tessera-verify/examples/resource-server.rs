//! A resource server guarded by Tessera access tokens: `GET /whoami` answers the token's
//! subject, scope and session for `Authorization: Bearer <token>` — or, for a token bound to
//! a DPoP key, `Authorization: DPoP <token>` with a proof — `401` without a valid token and
//! `503` while the verifier fails closed on a stale revocation list.
//!
//! ```sh
//! cargo run -p tessera-verify --example resource-server -- \
//!     --issuer http://127.0.0.1:8080 --audience api --client-id api --client-secret s3cret
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use axum::{Json, Router, routing::get};
use clap::Parser;
use serde_json::{Value, json};
use tessera_verify::{VerifiedToken, Verifier};

/// Serve `GET /whoami` for Tessera access tokens.
#[derive(Debug, Parser)]
struct Args {
    /// The issuer: exactly the tokens' `iss`.
    #[arg(long)]
    issuer: String,
    /// Where to reach Tessera (an origin); replaces the issuer's origin in every URL fetched.
    #[arg(long)]
    server: Option<String>,
    /// This resource server's audience.
    #[arg(long)]
    audience: String,
    /// Client id for the revocation endpoints.
    #[arg(long)]
    client_id: String,
    /// Client secret for the revocation endpoints.
    #[arg(long, env = "TESSERA_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Fail closed when the revocation state is older than this many seconds.
    #[arg(long, default_value_t = 30)]
    max_staleness: u64,
    /// The public base URL clients call (the base of DPoP proofs' `htu`). Default: the
    /// audience if it is an http(s) URL, else `http://` and the listening address.
    #[arg(long)]
    public_url: Option<String>,
}

async fn whoami(VerifiedToken(claims): VerifiedToken) -> Json<Value> {
    Json(json!({ "sub": claims.sub, "scope": claims.scope, "sid": claims.sid }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let public_url = match args.public_url {
        Some(url) => Some(url),
        None if args.audience.starts_with("http") => None,
        None => Some(format!("http://{}", listener.local_addr()?)),
    };
    let mut builder = Verifier::builder(args.issuer)
        .audience(args.audience)
        .client(args.client_id, args.client_secret)
        .max_staleness(Duration::from_secs(args.max_staleness));
    if let Some(server) = args.server {
        builder = builder.server(server);
    }
    if let Some(url) = public_url {
        builder = builder.public_url(url);
    }
    let verifier = builder.start().await?;
    let app = Router::new()
        .route("/whoami", get(whoami))
        .layer(verifier.layer());
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
