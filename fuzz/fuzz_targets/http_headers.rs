//! Cookie and `Authorization` parsing: arbitrary bytes become a `HeaderMap` and go through
//! `extract::{bearer, session_cookie, single_header, user_agent}`.
//!
//! Input format: lines (`\n`); each line's first byte picks the header name, the rest is its
//! value (values `HeaderValue::from_bytes` refuses are skipped, as hyper would never deliver
//! them). Invariants: a bearer credential is the one `Authorization` header's non-empty,
//! space-free tail after a case-insensitive `Bearer `; a session cookie value is a `;`-separated
//! pair of some `Cookie` header, named exactly `__Host-tessera_session`, never repeated.

#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use tessera_server::extract::{SESSION_COOKIE, bearer, session_cookie, single_header, user_agent};

const NAMES: [HeaderName; 6] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::CONTENT_TYPE,
    header::USER_AGENT,
    header::ORIGIN,
    header::HOST,
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some((&selector, value)) = line.split_first() else {
            continue;
        };
        let Ok(value) = HeaderValue::from_bytes(value) else {
            continue;
        };
        let name = NAMES[usize::from(selector) % NAMES.len()].clone();
        headers.append(name, value);
    }

    match bearer(&headers) {
        Ok(Some(token)) => {
            let values: Vec<_> = headers.get_all(header::AUTHORIZATION).iter().collect();
            assert_eq!(values.len(), 1, "bearer from a repeated header");
            let value = values[0].to_str().expect("bearer from a non-ASCII header");
            let (scheme, rest) = value.split_once(' ').expect("no scheme");
            assert!(scheme.eq_ignore_ascii_case("bearer"));
            assert_eq!(rest, token);
            assert!(!token.is_empty() && !token.contains(' '));
        }
        Ok(None) => assert!(headers.get(header::AUTHORIZATION).is_none()),
        Err(_) => assert!(headers.get(header::AUTHORIZATION).is_some()),
    }

    match session_cookie(&headers) {
        Ok(Some(value)) => {
            let prefix = format!("{SESSION_COOKIE}=");
            let pairs: Vec<&str> = headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .map(str::trim)
                .filter(|p| p.starts_with(&prefix))
                .collect();
            assert_eq!(pairs.len(), 1, "session cookie chosen among several");
            assert_eq!(pairs[0][prefix.len()..].trim_matches('"'), value);
            assert!(!value.starts_with('"') && !value.ends_with('"'));
        }
        Ok(None) | Err(_) => {}
    }

    for name in NAMES {
        let count = headers.get_all(&name).iter().count();
        match single_header(&headers, name.clone()) {
            Ok(None) => assert_eq!(count, 0),
            Ok(Some(v)) => {
                assert_eq!(count, 1);
                assert!(v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)));
            }
            Err(_) => assert!(count > 0),
        }
    }

    if let Some(ua) = user_agent(&headers) {
        assert!(ua.chars().count() <= 256);
    }
});
