//! Request ids: the one a caller (or the proxy in front) sends in `X-Request-Id`, when it is
//! short and made of safe characters, or one made here — unique across instances and
//! restarts, for one atomic addition.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The header a request id is read from and echoed in.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id accepted from a caller.
const MAX_LEN: usize = 64;

/// Whether a caller's request id may be used as given: 1 to 64 characters, each a letter, a
/// digit or one of `-_.:/+=` — enough for UUIDs, hex and base64 ids and what common proxies
/// generate, and nothing that could break a log line (no spaces, quotes, control characters
/// or non-ASCII).
#[must_use]
pub fn acceptable_request_id(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
}

/// Makes request ids `<process prefix>-<sequence>`.
#[derive(Debug)]
pub struct RequestIds {
    /// Random per process, so ids of two instances (or two runs) never collide.
    prefix: String,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        // 12 characters of a random base64url id: 72 bits. Should the generator fail, the
        // process id and start time are still unique per run.
        let prefix = tessera_core::opaque::random_id().map_or_else(
            |_| {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                format!("p{}t{nanos:x}", std::process::id())
            },
            |id| id.chars().take(12).collect(),
        );
        Self {
            prefix,
            next: AtomicU64::new(1),
        }
    }
}

impl RequestIds {
    /// The request's id: its `X-Request-Id` if there is exactly one and it is acceptable
    /// (the header value itself, not a copy), else a new one.
    #[must_use]
    pub fn for_request(&self, headers: &HeaderMap) -> HeaderValue {
        let mut sent = headers.get_all(REQUEST_ID_HEADER).iter();
        if let (Some(one), None) = (sent.next(), sent.next()) {
            if one.to_str().is_ok_and(acceptable_request_id) {
                return one.clone();
            }
        }
        self.generate()
    }

    /// A new id.
    #[must_use]
    pub fn generate(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // The prefix is base64url (or `p…t…` hex), the sequence hex: always a valid value.
        HeaderValue::try_from(format!("{}-{n:x}", self.prefix))
            .unwrap_or_else(|_| HeaderValue::from_static("unidentified"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_safe_ids_are_accepted() {
        for ok in [
            "a",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "req:42/7+x=",
            &"x".repeat(64),
        ] {
            assert!(acceptable_request_id(ok), "{ok}");
        }
        for bad in [
            "",
            &"x".repeat(65),
            "a b",
            "a\"b",
            "a\nb",
            "a\rb",
            "ä",
            "a\tb",
            "a;b",
            "<script>",
            "a\\b",
        ] {
            assert!(!acceptable_request_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_distinct_and_acceptable() {
        let ids = RequestIds::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let id = ids.generate().to_str().unwrap().to_owned();
            assert!(acceptable_request_id(&id), "{id}");
            assert!(seen.insert(id));
        }
        assert_ne!(
            RequestIds::default().generate(),
            RequestIds::default().generate(),
            "two processes' prefixes differ"
        );
    }

    #[test]
    fn a_repeated_or_unsafe_header_gets_a_new_id() {
        let ids = RequestIds::default();
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, "abc-123".parse().unwrap());
        assert_eq!(ids.for_request(&h), "abc-123");
        h.append(REQUEST_ID_HEADER, "def".parse().unwrap());
        let made = ids.for_request(&h);
        assert!(made != "abc-123" && made != "def", "{made:?}");
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, "has space".parse().unwrap());
        assert_ne!(ids.for_request(&h), "has space");
    }
}
