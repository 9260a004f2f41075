//! The one check of JSON text that Weft stores and later reads back.
//!
//! Payloads are kept as text and parsed into values when they are served
//! or handed on, so the check must accept exactly what that parse accepts.
//! serde's `IgnoredAny` skips numbers without reading them, and so passed
//! `1e400` and 400-digit integers, which a value parse refuses as out of
//! range (found by the `guest_values` fuzz target). This walks the text
//! as a value parse would, without building the value.

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Whether `text` is JSON that parses into a `serde_json::Value`.
pub fn validate(text: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<Checked>(text).map(|_| ())
}

/// A JSON value read and dropped as it goes.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_what_a_value_parse_accepts() {
        for text in [
            "null",
            "true",
            "0",
            "-1.5e300",
            "18446744073709551615",
            "-9223372036854775808",
            "\"é\\u00e9\"",
            "[1,[2,{\"a\":null}]]",
            "{\"k\":{\"k\":[]}}",
            " 7 ",
            "1e400",
            "1e-400",
            &"9".repeat(400),
            "[1e999]",
            "{\"a\":1,}",
            "[",
            "nul",
            "1 2",
            "{\"a\":1,\"a\":2}",
        ] {
            let by_value = serde_json::from_str::<serde_json::Value>(text).is_ok();
            assert_eq!(validate(text).is_ok(), by_value, "{text}");
        }
    }
}
