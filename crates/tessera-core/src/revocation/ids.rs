//! The maps of the revocation list, keyed by identifier, compact for the server's own ids.
//!
//! Design decision: the identifiers Tessera mints (`jti`, session ids, user ids:
//! [`crate::opaque::random_id`], 22 base64url characters for 128 bits) are kept as their 16
//! bytes, inline in the table slot, instead of as a `String` (a 24-byte header in the slot plus
//! a heap block of its own): at 10⁶ entries that is the difference between about 100 and
//! about 40 bytes per entry. Any other identifier (a hand-made one, another issuer's) is kept
//! as text in a second map. Only canonical base64url is packed (decoding refuses stray
//! trailing bits), so packing is one-to-one: two distinct identifiers never share a slot, and
//! the list stays exact — no false positives, no false negatives.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Length of a packed identifier's text.
const PACKED_TEXT: usize = 22;

/// The 16 bytes of a canonical 22-character base64url identifier; `None` for anything else.
fn pack(id: &str) -> Option<[u8; 16]> {
    if id.len() != PACKED_TEXT {
        return None;
    }
    // Room for the decoder's length estimate; a canonical id fills exactly 16 bytes.
    let mut buf = [0u8; 18];
    match URL_SAFE_NO_PAD.decode_slice(id.as_bytes(), &mut buf) {
        Ok(16) => {
            let mut out = [0u8; 16];
            out.copy_from_slice(buf.get(..16)?);
            Some(out)
        }
        _ => None,
    }
}

/// A map from identifiers to `V`.
#[derive(Clone, Debug)]
pub(super) struct IdMap<V> {
    packed: HashMap<[u8; 16], V>,
    text: HashMap<Box<str>, V>,
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        Self {
            packed: HashMap::new(),
            text: HashMap::new(),
        }
    }
}

impl<V> IdMap<V> {
    pub(super) fn get(&self, id: &str) -> Option<&V> {
        match pack(id) {
            Some(p) => self.packed.get(&p),
            None => self.text.get(id),
        }
    }

    pub(super) fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut V> {
        match pack(id) {
            Some(p) => self.packed.get_mut(&p),
            None => self.text.get_mut(id),
        }
    }

    pub(super) fn insert(&mut self, id: &str, value: V) {
        match pack(id) {
            Some(p) => {
                self.packed.insert(p, value);
            }
            None => {
                self.text.insert(id.into(), value);
            }
        }
    }

    pub(super) fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        self.packed.retain(|_, v| keep(v));
        self.text.retain(|_, v| keep(v));
    }

    pub(super) fn len(&self) -> usize {
        self.packed.len() + self.text.len()
    }

    /// Every entry, with its identifier as text again (in no particular order).
    pub(super) fn iter(&self) -> impl Iterator<Item = (String, &V)> {
        let packed = self
            .packed
            .iter()
            .map(|(p, v)| (URL_SAFE_NO_PAD.encode(p), v));
        let text = self.text.iter().map(|(t, v)| (String::from(&**t), v));
        packed.chain(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids_are_packed_and_come_back_as_they_were() {
        let id = crate::opaque::random_id().unwrap_or_default();
        assert!(pack(&id).is_some(), "{id}");
        let mut m = IdMap::default();
        m.insert(&id, 1u8);
        m.insert("user-00000042", 2u8);
        let mut back: Vec<(String, u8)> = m.iter().map(|(k, v)| (k, *v)).collect();
        back.sort();
        let mut want = vec![(id, 1), ("user-00000042".to_owned(), 2)];
        want.sort();
        assert_eq!(back, want);
    }

    #[test]
    fn a_non_canonical_twin_is_a_different_identifier() {
        // 16 zero bytes; the twin differs only in the 4 trailing bits a lax decoder ignores.
        let canonical = "AAAAAAAAAAAAAAAAAAAAAA";
        let twin = "AAAAAAAAAAAAAAAAAAAAAB";
        assert!(pack(canonical).is_some());
        assert_eq!(pack(twin), None);
        let mut m = IdMap::default();
        m.insert(canonical, ());
        assert!(m.contains(canonical));
        assert!(!m.contains(twin));
        m.insert(twin, ());
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn wrong_lengths_and_alphabets_stay_text() {
        for id in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAA+/",
        ] {
            assert_eq!(pack(id), None, "{id}");
        }
    }
}
