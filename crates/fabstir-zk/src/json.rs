//! Strict JSON: a document with a repeated object key is refused, at any depth.
//!
//! `serde_json` keeps the last of two equal keys. A client whose parser keeps
//! the first would then believe another value was checked (for instance a
//! `result` whose `response` appears twice). Every JSON document that comes
//! from outside goes through [`check_unique_keys`] before it is deserialized.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Why a JSON document is refused by [`check_unique_keys`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrictJsonError {
    /// An object names the same key twice.
    #[error("duplicate key {key:?} at {path}: each key may appear once")]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Where the object is, e.g. `$.result` (`$` is the whole document).
        path: String,
    },
    /// The document is not JSON at all.
    #[error("{0}")]
    Syntax(String),
    /// The document is JSON but a value does not fit: a missing, unknown or
    /// malformed field, named by its path.
    #[error("{path}: {message}")]
    Invalid {
        /// The offending value, e.g. `$.job_id` (`$` is the whole document).
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Parses `bytes` strictly: repeated keys are refused ([`check_unique_keys`]),
/// and a value that does not fit is reported with its path (`$.job_id: ...`).
pub fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StrictJsonError> {
    check_unique_keys(bytes)?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "$".to_string()
        } else {
            format!("$.{path}")
        };
        StrictJsonError::Invalid {
            path,
            message: e.into_inner().to_string(),
        }
    })?;
    deserializer
        .end()
        .map_err(|e| StrictJsonError::Syntax(e.to_string()))?;
    Ok(value)
}

/// Checks that no object in the JSON document `bytes` repeats a key.
///
/// Syntax errors are reported as [`StrictJsonError::Syntax`] (the caller's
/// own parser would report them too). Nesting depth is bounded by
/// `serde_json`'s recursion limit, so deep input cannot exhaust the stack.
pub fn check_unique_keys(bytes: &[u8]) -> Result<(), StrictJsonError> {
    let found = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let outcome = Node {
        path: "$".to_string(),
        found: &found,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end());
    match (outcome, found.into_inner()) {
        (_, Some(duplicate)) => Err(duplicate),
        (Ok(()), None) => Ok(()),
        (Err(e), None) => Err(StrictJsonError::Syntax(e.to_string())),
    }
}

/// One value of the document at `path`.
struct Node<'a> {
    path: String,
    /// The first duplicate found (the error `serde_json` carries is text only).
    found: &'a RefCell<Option<StrictJsonError>>,
}

/// `path.key`, or `path["key"]` for keys that are not plain identifiers.
fn child_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", serde_json::Value::String(key.to_string()))
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(Node {
                path: format!("{}[{index}]", self.path),
                found: self.found,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if keys.contains(&key) {
                let error = StrictJsonError::DuplicateKey {
                    key,
                    path: self.path.clone(),
                };
                let message = error.to_string();
                *self.found.borrow_mut() = Some(error);
                return Err(de::Error::custom(message));
            }
            map.next_value_seed(Node {
                path: child_path(&self.path, &key),
                found: self.found,
            })?;
            keys.insert(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate(json: &str) -> Option<(String, String)> {
        match check_unique_keys(json.as_bytes()) {
            Err(StrictJsonError::DuplicateKey { key, path }) => Some((key, path)),
            _ => None,
        }
    }

    #[test]
    fn unique_keys_pass_at_every_depth() {
        let json =
            r#"{"a": 1, "b": {"a": [1, {"a": 2, "b": null}], "c": "a"}, "d": [true, 1.5, -3]}"#;
        assert_eq!(check_unique_keys(json.as_bytes()), Ok(()));
    }

    #[test]
    fn a_repeated_key_is_named_with_its_path() {
        assert_eq!(
            duplicate(r#"{"a": 1, "a": 2}"#),
            Some(("a".into(), "$".into()))
        );
        assert_eq!(
            duplicate(r#"{"result": {"response": "x", "prompt": "p", "response": "y"}}"#),
            Some(("response".into(), "$.result".into()))
        );
        assert_eq!(
            duplicate(r#"{"l": [0, {"ok": 1}, {"k": {"z": 1, "z": 1}}]}"#),
            Some(("z".into(), "$.l[2].k".into()))
        );
        assert_eq!(
            duplicate(r#"[{"a b": {"x": 1, "x": 2}}]"#),
            Some(("x".into(), "$[0][\"a b\"]".into()))
        );
        // Equal after unescaping is equal.
        assert_eq!(
            duplicate(r#"{"a": 1, "\u0061": 2}"#),
            Some(("a".into(), "$".into()))
        );
    }

    #[test]
    fn syntax_errors_and_trailing_bytes_are_reported() {
        for bad in ["", "{", r#"{"a": }"#, "[1, 2", "{} {}", "nul"] {
            assert!(
                matches!(
                    check_unique_keys(bad.as_bytes()),
                    Err(StrictJsonError::Syntax(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_value_that_does_not_fit_is_named_by_its_path() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Inner {
            #[allow(dead_code)]
            n: u8,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Outer {
            #[allow(dead_code)]
            inner: Inner,
        }
        match from_slice::<Outer>(br#"{"inner": {"n": 300}}"#) {
            Err(StrictJsonError::Invalid { path, message }) => {
                assert_eq!(path, "$.inner.n");
                assert!(message.contains("300"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            from_slice::<Outer>(br#"{"inner": {"n": 1, "n": 2}}"#),
            Err(StrictJsonError::DuplicateKey { .. })
        ));
        assert!(from_slice::<Outer>(br#"{"inner": {"n": 1}}"#).is_ok());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(matches!(
            check_unique_keys(deep.as_bytes()),
            Err(StrictJsonError::Syntax(_))
        ));
    }
}
