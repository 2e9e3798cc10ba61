//! `tessera jws verify` and `tessera token inspect`: offline tools over the core's JOSE layer.

use std::path::Path;
use std::process::ExitCode;

use tessera_core::inspect::Severity;
use tessera_core::jose::{Jwk, VerifyingKey, verify_compact};
use tessera_core::time::{Clock, SystemClock};

/// Verifies `token` against the JWK in `key_file`: exit 0 and the payload on stdout when
/// valid, 1 with the reason on stderr when not, 2 when the key file is unusable or its `use` /
/// `key_ops` forbid verifying (a usage error: the wrong key was given, not a bad token).
pub fn verify(key_file: &Path, token: &str) -> ExitCode {
    let key = match std::fs::read_to_string(key_file)
        .map_err(|e| e.to_string())
        .and_then(|text| Jwk::from_json(&text).map_err(|e| e.to_string()))
        .and_then(|jwk| VerifyingKey::from_jwk(&jwk).map_err(|e| e.to_string()))
    {
        Ok(key) => key,
        Err(e) => {
            eprintln!("error: key {}: {e}", key_file.display());
            return ExitCode::from(2);
        }
    };
    // With one key, a token may omit `kid`; if both name one, they must agree.
    let lookup = |kid: Option<&str>| match (kid, key.kid()) {
        (Some(a), Some(b)) if a != b => None,
        _ => Some(&key),
    };
    match verify_compact(token.trim(), lookup) {
        Ok(verified) => {
            // An empty payload is valid (RFC 7515) and prints as nothing at all, not a blank
            // line, so `$(tessera jws verify …)` is exactly the payload.
            if !verified.payload().is_empty() {
                println!("{}", String::from_utf8_lossy(verified.payload()));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("invalid: {e}");
            ExitCode::from(1)
        }
    }
}

/// Prints what a token is and what is risky about it. Exit 1 if any finding is DANGER, 0
/// otherwise, so a pipeline can refuse tokens made unsafely (`none`, a guessable HMAC secret,
/// no `exp`, an undecodable JWT) while warnings stay advice.
pub fn inspect(token: &str) -> ExitCode {
    let report = tessera_core::inspect::inspect(token.trim(), SystemClock.now());
    println!("{report}");
    if report.worst() == Some(Severity::Danger) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
