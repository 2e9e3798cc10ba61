//! Every integration test of `tessera-store`, in one binary: one link instead of one per file.

mod conformance;
mod postgres_store;
mod redis_store;
