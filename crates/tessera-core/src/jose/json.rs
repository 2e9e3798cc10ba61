//! Strict JSON for JOSE headers, payloads and keys: UTF-8, one value, no duplicate member
//! names at any depth.
//!
//! Design decision: `serde_json` silently keeps the *last* of two equal member names, while
//! other parsers keep the first, so `{"alg":"EdDSA","alg":"none"}` could mean different things
//! to two verifiers. Every JOSE object therefore goes through [`parse`], whose visitor refuses
//! duplicates; nesting depth stays bounded by `serde_json`'s recursion limit.

use std::borrow::Cow;
use std::collections::HashSet;
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

/// A member name as the parser found it: borrowed from the input unless it held escapes.
/// Compared after unescaping, so `"a\u0062"` and `"ab"` are the same name.
struct Name<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// Past this many members, names seen are kept in a hash set rather than compared one by
/// one, so a hostile object with thousands of members costs linear time, not quadratic.
const FEW_MEMBERS: usize = 16;

/// Hands every member of the top-level object to `member`, checking names for duplicates.
struct Members<F>(F);

impl<'de, F: FnMut(&str, Value)> Visitor<'de> for Members<F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut access: A) -> Result<(), A::Error> {
        // The first names live on the stack (borrowed from the input unless escaped), so a
        // token's header and claims are checked without allocating for their names.
        let mut few: [Cow<'de, str>; FEW_MEMBERS] = Default::default();
        let mut seen = 0;
        let mut many: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(Name(name)) = access.next_key::<Name<'de>>()? {
            let repeated = if seen <= FEW_MEMBERS {
                few.get(..seen).is_some_and(|names| names.contains(&name))
            } else {
                many.contains(&name)
            };
            if repeated {
                return Err(de::Error::custom(DUPLICATE));
            }
            let StrictValue(value) = access.next_value()?;
            (self.0)(&name, value);
            if let Some(slot) = few.get_mut(seen) {
                *slot = name;
            } else {
                if seen == FEW_MEMBERS {
                    many.extend(few.iter_mut().map(std::mem::take));
                }
                many.insert(name);
            }
            seen += 1;
        }
        Ok(())
    }
}

/// Parses strict JSON that must be an object and hands each member, in document order, to
/// `member` — the same rules as [`parse_object`] (duplicates refused at every depth, nothing
/// after the object) without building the map, for callers that read a few known members.
///
/// # Errors
/// As [`parse_object`]; `member` may have seen some members when an error is returned.
pub fn parse_members(bytes: &[u8], member: impl FnMut(&str, Value)) -> Result<(), JoseError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    deserializer
        .deserialize_map(Members(member))
        .and_then(|()| deserializer.end())
        .map_err(|e| error(&e))
}

fn error(e: &serde_json::Error) -> JoseError {
    if e.to_string().starts_with(DUPLICATE) {
        JoseError::DuplicateKey
    } else {
        JoseError::BadJson
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
        .map_err(|e| error(&e))
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

    /// `parse_members` accepts and refuses exactly what `parse_object` does.
    #[test]
    fn parse_members_agrees_with_parse_object() {
        let many: String = (0..40).map(|n| format!("\"k{n}\":{n},")).collect();
        let many_dup = format!("{{{many}\"k7\":0}}");
        let many_ok = format!("{{{}}}", many.trim_end_matches(','));
        let deep = "{\"a\":".repeat(200) + "1" + &"}".repeat(200);
        // A repeat just as the names move from the stack to the hash set, and just after.
        let names = |n: usize| -> String { (0..n).map(|k| format!("\"k{k}\":{k},")).collect() };
        let dup_at_16 = format!("{{{}\"k0\":0}}", names(FEW_MEMBERS));
        let dup_at_17 = format!("{{{}\"k15\":0}}", names(FEW_MEMBERS + 1));
        for text in [
            &br#"{"alg":"EdDSA","kid":"k","typ":"at+jwt"}"#[..],
            br#"{"alg":"EdDSA","alg":"none"}"#,
            br#"{"a\u0062":1,"ab":2}"#,
            br#"{"a":{"b":1,"b":2}}"#,
            br#"{"a":[{"x":1},{"y":1,"y":1}]}"#,
            br#" {"a":1} "#,
            b"{} {}",
            b"[1]",
            b"\"x\"",
            b"",
            b"{\"a\":\"\xff\"}",
            many_dup.as_bytes(),
            many_ok.as_bytes(),
            dup_at_16.as_bytes(),
            dup_at_17.as_bytes(),
            deep.as_bytes(),
        ] {
            let mut members = Map::new();
            let streamed = parse_members(text, |name, value| {
                members.insert(name.to_owned(), value);
            });
            match (parse_object(text), streamed) {
                (Ok(whole), Ok(())) => assert_eq!(whole, members, "{text:?}"),
                (Err(JoseError::DuplicateKey), Err(JoseError::DuplicateKey))
                | (Err(JoseError::BadJson), Err(JoseError::BadJson)) => {}
                (a, b) => panic!("{text:?}: parse_object {a:?}, parse_members {b:?}"),
            }
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
