//! Every integration test of `tessera-core`, in one binary: one link instead of one per file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod attacks;
mod properties;
mod vectors;
