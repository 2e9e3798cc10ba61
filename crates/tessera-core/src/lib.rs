//! Tessera's pure core: everything about credentials that can be decided without I/O.
//!
//! Token formats (strict JWS, RFC 9068 access tokens, opaque `tss_`/`trt_` tokens and `tcs_`
//! client secrets), signing keys and the published JWKS, the rules of sessions, refresh-token
//! families, the revocation list and registered OAuth clients. The one design decision to
//! know: nothing here reads a clock, a socket or a file — time is a [`time::UnixTime`]
//! argument, randomness comes from the OS CSPRNG through aws-lc-rs, and storage is the
//! caller's business.

#![forbid(unsafe_code)]

pub mod access;
pub mod audit;
pub mod authorization;
pub mod client;
pub mod device;
pub mod dpop;
pub mod inspect;
pub mod jose;
pub mod keys;
pub mod opaque;
pub mod password;
pub mod refresh;
pub mod revocation;
pub mod session;
pub mod time;
pub mod token;
pub mod username;
