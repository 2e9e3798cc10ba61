//! Tessera's HTTP API.
//!
//! [`app`] builds the whole API as one router over an [`AppState`]; the binary serves it, and
//! tests drive it in-process. The server keeps no state of its own beyond caches of the store
//! (signing keys, the revocation list), so any number of instances can share one store.

#![forbid(unsafe_code)]

pub mod auth;
pub mod client_auth;
pub mod config;
pub mod cors;
pub mod dpop;
mod edge;
pub mod error;
pub mod extract;
pub mod keys;
pub mod metrics;
pub mod net;
pub mod pages;
pub mod revocations;
pub mod routes;
pub mod service;
pub mod state;

pub use config::ServerConfig;
pub use net::IpNet;
pub use routes::{app, route_table};
pub use state::{AppState, StartupError};
