//! Strict JSON for JOSE headers, payloads and keys: UTF-8, one value, no duplicate member
//! names at any depth.
//!
//! Design decision: `serde_json` silently keeps the *last* of two equal member names, while
//! other parsers keep the first, so `{"alg":"EdDSA","alg":"none"}` could mean different things
//! to two verifiers. Every JOSE object therefore goes through [`parse`], whose visitor refuses
//! duplicates; nesting depth stays bounded by `serde_json`'s recursion limit.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::JoseError;

/// Marker carried through `serde_json`'s error so a duplicate can be told apart from bad JSON.
const DUPLICATE: &str = "tessera: duplicate member name";

/// A JSON value read by the duplicate-refusing visitor.
struct StrictValue(Value);

impl<'de> de::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// Parses one strict JSON value from UTF-8 bytes.
///
/// # Errors
/// [`JoseError::DuplicateKey`] if any object repeats a member name, [`JoseError::BadJson`] for
/// any other problem (invalid UTF-8, syntax, trailing data, nesting too deep).
pub fn parse(bytes: &[u8]) -> Result<Value, JoseError> {
    serde_json::from_slice::<StrictValue>(bytes)
        .map(|StrictValue(v)| v)
        .map_err(|e| {
            if e.to_string().starts_with(DUPLICATE) {
                JoseError::DuplicateKey
            } else {
                JoseError::BadJson
            }
        })
}

/// Parses strict JSON that must be an object.
///
/// # Errors
/// As [`parse`], and [`JoseError::BadJson`] if the value is not an object.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, JoseError> {
    match parse(bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(JoseError::BadJson),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_json() {
        let v = parse(br#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":"\u00e9"}"#).unwrap();
        assert_eq!(v["a"][1], -2);
        assert_eq!(v["c"], "é");
    }

    #[test]
    fn rejects_duplicates_at_every_depth() {
        for bad in [
            &br#"{"alg":"EdDSA","alg":"none"}"#[..],
            br#"{"a":{"b":1,"b":2}}"#,
            br#"{"a":[{"x":1},{"y":1,"y":1}]}"#,
            br#"{"a\u0062":1,"ab":2}"#,
        ] {
            assert!(
                matches!(parse(bad), Err(JoseError::DuplicateKey)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_json() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        for bad in [
            &b"{"[..],
            b"{} {}",
            b"\xef\xbb\xbf{}",
            b"{\"a\":\"\xff\"}",
            b"{'a':1}",
            b"",
            deep.as_bytes(),
        ] {
            assert!(matches!(parse(bad), Err(JoseError::BadJson)), "{bad:?}");
        }
        assert!(matches!(parse_object(b"[1]"), Err(JoseError::BadJson)));
        assert!(parse_object(b" {\"a\":1} ").is_ok());
    }
}
