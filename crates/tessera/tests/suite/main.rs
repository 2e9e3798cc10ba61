//! Every integration test of `tessera`, in one binary: one link instead of one per file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod audit_cli;
mod bench;
mod browser;
mod browser_spa;
mod browser_support;
mod cli;
mod clients;
mod common;
mod config_check;
mod crash_durability;
mod dpop_cors;
mod faults;
mod kek;
mod key_drill;
mod multi_instance;
mod operations;
mod resource_server;
mod secrets;
mod webdriver;
