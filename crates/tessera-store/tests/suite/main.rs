//! Every integration test of `tessera-store`, in one binary: one link instead of one per file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

// The store's dev-dependency on itself enables every backend, so all of these run in
// `cargo test -p tessera-store` and in the workspace run; the guards keep the suite building
// under other feature sets.
#[cfg(feature = "sqlite")]
mod conformance;
#[cfg(feature = "postgres")]
mod postgres_store;
#[cfg(all(feature = "redis", feature = "sqlite", feature = "postgres"))]
mod redis_store;
