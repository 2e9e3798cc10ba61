//! Every integration test of `tessera-store`, in one binary: one link instead of one per file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod conformance;
mod postgres_store;
mod redis_store;
