//! Every integration test of `tessera`, in one binary: one link instead of one per file.

mod cli;
mod common;
mod crash_durability;
mod faults;
mod key_drill;
mod multi_instance;
mod secrets;
