//! DPoP proofs: arbitrary bytes through `dpop::verify_proof`, as the `DPoP` header of a
//! request to Tessera or a resource server.
//!
//! Invariants: a refused proof is refused for a reason, never a panic; an accepted one
//! carries a 43-character thumbprint (base64url SHA-256), is accepted again identically (the
//! check depends on nothing but its inputs) and names a replay key that outlives its `iat`
//! check.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::dpop::{MAX_PROOF_AGE_SECS, ProofRequest, verify_proof};
use tessera_core::time::UnixTime;

const NOW: UnixTime = UnixTime(1_700_000_000);

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = std::str::from_utf8(data) else {
        return;
    };
    let request = ProofRequest {
        method: "GET",
        url: "https://auth.example/v1/userinfo",
        access_token: Some("eyJ.access.token"),
    };
    let Ok(verified) = verify_proof(proof, &request, NOW) else {
        return;
    };
    assert_eq!(verified.jkt().len(), 43);
    let again = verify_proof(proof, &request, NOW).expect("accepted once, accepted again");
    assert_eq!(again, verified);
    let (key, until) = verified.replay_key();
    assert_eq!(key.len(), 43);
    assert!(until > verified.iat().plus(MAX_PROOF_AGE_SECS));
});
