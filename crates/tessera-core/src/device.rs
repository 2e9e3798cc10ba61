//! Device cookies: how a login throttle avoids locking a victim out of their own device.
//!
//! Per-account throttling stops online guessing, but an attacker who only knows a username
//! could use it to lock the owner out. So a successful login hands the browser a *device
//! cookie*: the username and a random device id, MACed with a key derived from a signing key
//! (`HMAC-SHA256(signing secret, "tessera device cookie v1")`, so every instance sharing the
//! key ring can check it without storing anything). A login that presents a valid device cookie
//! for the account it names is throttled per device instead of per account: the owner's known
//! browser keeps working however many failures strangers pile on the account. This is the
//! OWASP "device cookies" defence.
//!
//! Format: `kid.base64url(username).base64url(device id).base64url(mac)`, the MAC over
//! `kid.username.device-id` as they appear. Rotating the key away simply makes old cookies
//! unknown, which costs their holders the per-device exemption, nothing more.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::keys::KeyRing;

/// Name of the device cookie.
pub const DEVICE_COOKIE: &str = "__Host-tessera_device";
/// Lifetime of a device cookie, in seconds (one year).
pub const DEVICE_COOKIE_SECS: i64 = 365 * 24 * 3600;
const PURPOSE: &str = "tessera device cookie v1";
const MAX_LEN: usize = 512;

fn mac_key(ring: &KeyRing, kid: &str) -> Option<hmac::Key> {
    let secret: Zeroizing<Vec<u8>> = ring.secret_of(kid)?;
    let root = hmac::Key::new(hmac::HMAC_SHA256, &secret);
    let derived = hmac::sign(&root, PURPOSE.as_bytes());
    Some(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
}

/// A new device cookie value for `username`, MACed under the ring's current key.
/// `None` if the ring has no current key or the random generator fails.
#[must_use]
pub fn issue(ring: &KeyRing, username: &str) -> Option<String> {
    let kid = ring.current()?.kid().to_owned();
    let key = mac_key(ring, &kid)?;
    let mut id = [0u8; 16];
    SystemRandom::new().fill(&mut id).ok()?;
    let head = format!(
        "{kid}.{}.{}",
        URL_SAFE_NO_PAD.encode(username),
        URL_SAFE_NO_PAD.encode(id)
    );
    let mac = hmac::sign(&key, head.as_bytes());
    Some(format!("{head}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref())))
}

/// The device id of a cookie that is genuine and was issued for `username`; `None` otherwise.
/// The MAC is checked in constant time.
#[must_use]
pub fn verify(ring: &KeyRing, value: &str, username: &str) -> Option<String> {
    if value.len() > MAX_LEN {
        return None;
    }
    let (head, mac) = value.rsplit_once('.')?;
    let mut parts = head.split('.');
    let (Some(kid), Some(name), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
    hmac::verify(&mac_key(ring, kid)?, head.as_bytes(), &mac).ok()?;
    let name = URL_SAFE_NO_PAD.decode(name).ok()?;
    (name == username.as_bytes()).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::Algorithm;
    use crate::keys::KeyStatus;
    use crate::time::UnixTime;

    fn ring() -> KeyRing {
        let rec =
            KeyRing::generate_record(Algorithm::EdDSA, KeyStatus::Current, UnixTime(0)).unwrap();
        KeyRing::from_records(&[rec]).unwrap()
    }

    #[test]
    fn genuine_cookie_names_its_device_for_its_user_only() {
        let r = ring();
        let c = issue(&r, "alice").unwrap();
        let id = verify(&r, &c, "alice").unwrap();
        assert_eq!(id.len(), 22);
        assert_eq!(
            verify(&r, &c, "bob"),
            None,
            "a cookie for alice says nothing about bob"
        );
        assert_ne!(
            issue(&r, "alice").unwrap(),
            c,
            "each device gets its own id"
        );
    }

    #[test]
    fn forged_or_foreign_cookies_are_refused() {
        let r = ring();
        let c = issue(&r, "alice").unwrap();
        let mut flipped = c.clone().into_bytes();
        let i = flipped.len() - 3;
        flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            verify(&r, &String::from_utf8(flipped).unwrap(), "alice"),
            None
        );
        assert_eq!(verify(&ring(), &c, "alice"), None, "another ring's key");
        for bad in ["", "a.b.c", "a.b.c.d.e", &"x".repeat(600)] {
            assert_eq!(verify(&r, bad, "alice"), None);
        }
        // Swapping the username under a kept MAC fails.
        let parts: Vec<&str> = c.split('.').collect();
        let swapped = format!(
            "{}.{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode("bob"),
            parts[2],
            parts[3]
        );
        assert_eq!(verify(&r, &swapped, "bob"), None);
    }
}
