//! Every integration test of `tessera-server`, in one binary: one link instead of one per file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod access_cache;
mod admin_clients;
mod admin_pages;
mod admin_users;
mod attacks;
mod audit_log;
mod authorization_code;
mod authorization_sign_in;
mod bad_input;
mod clients_oauth;
mod common;
mod cors;
mod credential_races;
mod csrf_cookies;
mod disable_races;
mod dpop;
mod faulty_store;
mod kek_at_rest;
mod key_schedule;
mod meta;
mod metrics;
mod oauth;
mod page_attacks;
mod page_client;
mod pages;
mod password_change;
mod prometheus;
mod random_input;
mod rate_limits;
mod refresh_replays;
mod revocation_reload;
mod store_faults;
mod throttle_races;
mod timeouts;
mod token_exchange;
mod trusted_proxy;
mod users_sessions;
