use super::*;
use axum::http::HeaderValue;

#[test]
fn bearer_parsing_is_strict() {
    let mut h = HeaderMap::new();
    assert_eq!(bearer(&h).unwrap(), None);
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer abc"),
    );
    assert_eq!(bearer(&h).unwrap(), Some("abc"));
    for bad in ["Basic abc", "Bearer", "Bearer ", "Bearer a b", "bearerabc"] {
        h.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
        assert!(bearer(&h).is_err(), "{bad}");
    }
    h.append(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer abc"),
    );
    assert!(bearer(&h).is_err(), "repeated header");
}

/// `client_ip` for a request from `peer` with these `(header, value)` lines, behind
/// proxies at 127.0.0.1 and in 10.0.0.0/8.
fn ip_of(peer: &str, lines: &[(&str, &[u8])]) -> IpAddr {
    let trusted: Vec<IpNet> = ["127.0.0.1", "10.0.0.0/8"]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    let mut h = HeaderMap::new();
    for (name, value) in lines {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    client_ip(peer.parse().unwrap(), &h, &trusted)
}

fn xff(peer: &str, values: &[&str]) -> String {
    let lines: Vec<(&str, &[u8])> = values
        .iter()
        .map(|v| ("x-forwarded-for", v.as_bytes()))
        .collect();
    ip_of(peer, &lines).to_string()
}

fn fwd(values: &[&str]) -> String {
    let lines: Vec<(&str, &[u8])> = values.iter().map(|v| ("forwarded", v.as_bytes())).collect();
    ip_of("127.0.0.1", &lines).to_string()
}

#[test]
fn an_untrusted_peer_is_the_client_whatever_the_headers_say() {
    assert_eq!(xff("198.51.100.7", &["203.0.113.5"]), "198.51.100.7");
    assert_eq!(
        ip_of("198.51.100.7", &[("forwarded", b"for=203.0.113.5")]).to_string(),
        "198.51.100.7"
    );
    let none = client_ip("127.0.0.1".parse().unwrap(), &HeaderMap::new(), &[]);
    assert_eq!(none.to_string(), "127.0.0.1");
    let mut h = HeaderMap::new();
    h.insert(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.5"));
    let untrusted = client_ip("127.0.0.1".parse().unwrap(), &h, &[]);
    assert_eq!(untrusted.to_string(), "127.0.0.1", "no trusted proxies");
}

#[test]
fn x_forwarded_for_is_walked_right_to_left_past_trusted_hops() {
    for (lines, client) in [
        (&[][..], "127.0.0.1"),
        (&["203.0.113.5"][..], "203.0.113.5"),
        // The client wrote 6.6.6.6; the proxy appended what it saw.
        (&["6.6.6.6, 203.0.113.5"][..], "203.0.113.5"),
        (&["6.6.6.6,203.0.113.5, 10.0.0.2"][..], "203.0.113.5"),
        // Header lines join in order.
        (&["6.6.6.6", "203.0.113.5"][..], "203.0.113.5"),
        (&["203.0.113.5, 10.0.0.1", "10.0.0.2"][..], "203.0.113.5"),
        // Every hop trusted: the leftmost.
        (&["10.0.0.3, 10.0.0.2"][..], "10.0.0.3"),
        // Ports and IPv6, bracketed or not.
        (&["203.0.113.5:4711"][..], "203.0.113.5"),
        (&["[2001:db8::1]:443"][..], "2001:db8::1"),
        (&["[2001:db8::1]"][..], "2001:db8::1"),
        (&[" 2001:db8::1 "][..], "2001:db8::1"),
        (&["::ffff:203.0.113.5"][..], "203.0.113.5"),
        // Empty list elements are no hop.
        (&["6.6.6.6, 203.0.113.5,, ", ""][..], "203.0.113.5"),
    ] {
        assert_eq!(xff("127.0.0.1", lines), client, "{lines:?}");
    }
}

#[test]
fn an_unreadable_entry_ends_the_walk_at_the_last_trusted_hop() {
    for (lines, client) in [
        (&["6.6.6.6, garbage"][..], "127.0.0.1"),
        (&["6.6.6.6, garbage, 10.0.0.2"][..], "10.0.0.2"),
        (&["unknown"][..], "127.0.0.1"),
        (&["6.6.6.6, unknown, 10.0.0.2"][..], "10.0.0.2"),
        (&["203.0.113.5:99999999"][..], "127.0.0.1"),
        (&["203.0.113.5:"][..], "127.0.0.1"),
        (&["[2001:db8::1"][..], "127.0.0.1"),
        (&["[2001:db8::1]x"][..], "127.0.0.1"),
        (&["fe80::1%eth0"][..], "127.0.0.1"),
        (&["010.0.0.1"][..], "127.0.0.1"),
        (&["\"203.0.113.5\""][..], "127.0.0.1"),
        (&["203.0.113.5 6.6.6.6"][..], "127.0.0.1"),
        // What lies left of the proxy's own entry cannot matter.
        (&["garbage, 203.0.113.5"][..], "203.0.113.5"),
    ] {
        assert_eq!(xff("127.0.0.1", lines), client, "{lines:?}");
    }
    let latin1: &[u8] = b"6.6.6.6 \xff";
    let lines: [(&str, &[u8]); 2] = [
        ("x-forwarded-for", latin1),
        ("x-forwarded-for", b"203.0.113.5"),
    ];
    assert_eq!(ip_of("127.0.0.1", &lines).to_string(), "203.0.113.5");
    assert_eq!(
        ip_of("10.0.0.9", &[("x-forwarded-for", latin1)]).to_string(),
        "10.0.0.9"
    );
}

#[test]
fn the_walk_stops_after_max_forwarded_hops() {
    let chain = format!("6.6.6.6, 10.0.0.1, {}", vec!["10.0.0.2"; 40].join(", "));
    assert_eq!(xff("127.0.0.1", &[&chain]), "10.0.0.2");
    let commas = format!("6.6.6.6{}", ",".repeat(4000));
    assert_eq!(xff("127.0.0.1", &[&commas]), "127.0.0.1");
    let within = format!(
        "6.6.6.6, {}",
        vec!["10.0.0.2"; MAX_FORWARDED_HOPS - 1].join(",")
    );
    assert_eq!(xff("127.0.0.1", &[&within]), "6.6.6.6");
}

#[test]
fn forwarded_for_parameters_are_walked_like_x_forwarded_for() {
    for (lines, client) in [
        (
            &["for=192.0.2.60;proto=http;by=203.0.113.43"][..],
            "192.0.2.60",
        ),
        (
            &["for=\"[2001:db8:cafe::17]:4711\""][..],
            "2001:db8:cafe::17",
        ),
        (&["for=\"[2001:db8:cafe::17]\""][..], "2001:db8:cafe::17"),
        (&["For=\"192.0.2.43:47011\""][..], "192.0.2.43"),
        (&["for=\"[2001:db8::1]:_p0rt\""][..], "2001:db8::1"),
        (&["for=[2001:db8::1]:80"][..], "2001:db8::1"),
        (&["for=192.0.2.43, for=198.51.100.17"][..], "198.51.100.17"),
        (
            &["for=192.0.2.43", "for=198.51.100.17;by=10.0.0.1"][..],
            "198.51.100.17",
        ),
        (&["for=198.51.100.17, for=10.0.0.2"][..], "198.51.100.17"),
        (
            &["proto=https;for=198.51.100.17 ; by=_x"][..],
            "198.51.100.17",
        ),
        (&["for=10.0.0.3, for=10.0.0.2"][..], "10.0.0.3"),
        (&["for=198.51.100.17,, "][..], "198.51.100.17"),
        // Obfuscated and unknown nodes say nothing past them.
        (&["for=\"_gazonk\""][..], "127.0.0.1"),
        (&["for=unknown, for=10.0.0.2"][..], "10.0.0.2"),
        (&["for=198.51.100.17, for=UNKNOWN"][..], "127.0.0.1"),
        // An element without `for`, or with two, is no address.
        (&["proto=https"][..], "127.0.0.1"),
        (&["for=6.6.6.6;for=198.51.100.17"][..], "127.0.0.1"),
        (&["for"][..], "127.0.0.1"),
        (&["for=\"192.0.2.1"][..], "127.0.0.1"),
        (&["for=\"19\\2.0.2.1\""][..], "127.0.0.1"),
        (&["for=\"[2001:db8::1\""][..], "127.0.0.1"),
        (&["for=\"[2001:db8::1]:\""][..], "127.0.0.1"),
        (&["for=\"[2001:db8::1]:123456\""][..], "127.0.0.1"),
        (&["for=\"[2001:db8::1]:_\""][..], "127.0.0.1"),
        // A quote the client opened cannot swallow what the proxy appended.
        (&["for=\"6.6.6.6, for=198.51.100.17"][..], "198.51.100.17"),
        (
            &["for=\"6.6.6.6, for=1.2.3.4\", for=198.51.100.17"][..],
            "198.51.100.17",
        ),
    ] {
        assert_eq!(fwd(lines), client, "{lines:?}");
    }
}

#[test]
fn forwarded_is_read_instead_of_x_forwarded_for_when_present() {
    let lines: [(&str, &[u8]); 2] = [
        ("x-forwarded-for", b"203.0.113.5"),
        ("forwarded", b"for=198.51.100.17"),
    ];
    assert_eq!(ip_of("127.0.0.1", &lines).to_string(), "198.51.100.17");
}

#[test]
fn a_dual_stack_peer_is_matched_and_given_as_ipv4() {
    assert_eq!(xff("::ffff:127.0.0.1", &["203.0.113.5"]), "203.0.113.5");
    assert_eq!(xff("::ffff:198.51.100.7", &["203.0.113.5"]), "198.51.100.7");
}

#[test]
fn duplicate_session_cookies_are_refused() {
    let mut h = HeaderMap::new();
    h.insert(
        header::COOKIE,
        HeaderValue::from_static("a=1; __Host-tessera_session=x"),
    );
    assert_eq!(session_cookie(&h).unwrap(), Some("x"));
    h.append(
        header::COOKIE,
        HeaderValue::from_static("__Host-tessera_session=y"),
    );
    assert!(session_cookie(&h).is_err());
    let mut h = HeaderMap::new();
    h.insert(
        header::COOKIE,
        HeaderValue::from_static("tessera_session=x; other=2"),
    );
    assert_eq!(session_cookie(&h).unwrap(), None);
}
