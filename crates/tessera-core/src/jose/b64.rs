//! Canonical base64url (RFC 7515 §2): URL-safe alphabet, no padding, no whitespace, and no
//! non-zero trailing bits.
//!
//! Design decision: decoding accepts exactly the strings that encoding produces. A lenient
//! decoder lets one signature have several spellings (malleability) and lets tokens disagree
//! with logs and denylists about their own identity.

use std::ops::Range;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::JoseError;

/// The one base64url engine used by the JOSE layer.
const STRICT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Encodes bytes as unpadded base64url.
#[must_use]
pub fn encode(bytes: &[u8]) -> String {
    STRICT.encode(bytes)
}

/// Decodes canonical unpadded base64url; anything else is [`JoseError::BadBase64`].
///
/// # Errors
/// [`JoseError::BadBase64`] on padding, whitespace, characters outside the URL-safe alphabet,
/// an impossible length, or non-zero trailing bits.
pub fn decode(text: &str) -> Result<Vec<u8>, JoseError> {
    STRICT.decode(text).map_err(|_| JoseError::BadBase64)
}

/// [`decode`], appending the bytes to `out`; returns where in `out` they are. On an error,
/// `out` may hold part of them.
///
/// # Errors
/// As [`decode`].
pub fn decode_into(text: &str, out: &mut Vec<u8>) -> Result<Range<usize>, JoseError> {
    let start = out.len();
    STRICT
        .decode_vec(text, out)
        .map_err(|_| JoseError::BadBase64)?;
    Ok(start..out.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        for len in 0..64u8 {
            let bytes: Vec<u8> = (0..len).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }
    }

    #[test]
    fn rejects_non_canonical_forms() {
        // "AQ" is canonical for [0x01]; "AR" has non-zero trailing bits and decodes to the
        // same byte under a lenient decoder.
        assert_eq!(decode("AQ").unwrap(), vec![1]);
        for bad in [
            "AR", "AQ==", "AQ=", "A Q", "AQ\n", "+w", "/w", "A", "AQ.", "Zm9v\t",
        ] {
            assert!(matches!(decode(bad), Err(JoseError::BadBase64)), "{bad:?}");
        }
        assert_eq!(decode("-_8").unwrap(), vec![0xfb, 0xff]);
    }
}
