//! Every integration test of `tessera-verify`, in one binary, against a mock Tessera
//! (`mock.rs`) served by axum on a loopback port.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
mod cache;
mod dpop;
mod example;
mod extractor;
mod mock;
mod revocations;
mod start;
mod tokens;
