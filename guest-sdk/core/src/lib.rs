//! Types shared by `weft-sdk` (workflows) and `weft-rpc` (step functions).
//!
//! Each SDK generates bindings for exactly one WIT world (a component can
//! implement only one), so the vocabulary they share lives here.

use serde::Serialize;
use std::fmt;

/// A failure with a machine-readable `code`, a message, and optional JSON
/// details. Workflows return it, steps fail with it, and the host records it
/// on the run or step.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub code: String,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl Error {
    /// An error with a snake_case `code` such as `payment_declined`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            details: None,
        }
    }

    /// Attaches JSON details (anything serialisable).
    pub fn with_details(mut self, details: impl Serialize) -> Self {
        self.details = serde_json::to_value(details).ok();
        self
    }

    /// Marks the error as not worth retrying: the host records it as the
    /// step's final outcome at once instead of applying the retry policy.
    pub fn permanent(mut self) -> Self {
        let mut details = match self.details.take() {
            Some(serde_json::Value::Object(map)) => map,
            Some(other) => {
                let mut map = serde_json::Map::new();
                map.insert("value".into(), other);
                map
            }
            None => serde_json::Map::new(),
        };
        details.insert("retryable".into(), serde_json::Value::Bool(false));
        self.details = Some(serde_json::Value::Object(details));
        self
    }

    /// Details serialised for the wire.
    pub fn details_json(&self) -> Option<String> {
        self.details.as_ref().map(|d| d.to_string())
    }

    /// Rebuilds an error from the wire form.
    pub fn from_parts(code: String, message: String, details: Option<String>) -> Self {
        Self {
            code,
            message,
            details: details.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::new("invalid_json", e.to_string()).permanent()
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self::new("error", message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Self::new("error", message)
    }
}

/// Parses JSON from the host into the caller's type, naming what it was.
pub fn decode<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, Error> {
    serde_json::from_str(json).map_err(|e| {
        Error::new(
            "invalid_input",
            format!("{what} does not match the expected type: {e}"),
        )
        .permanent()
    })
}

/// Serialises a value for the host.
pub fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| {
        Error::new(
            "invalid_output",
            format!("{what} cannot be serialised: {e}"),
        )
        .permanent()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_keeps_existing_details() {
        let e = Error::new("x", "y")
            .with_details(serde_json::json!({"a": 1}))
            .permanent();
        let d = e.details.unwrap();
        assert_eq!(d["a"], 1);
        assert_eq!(d["retryable"], false);
    }

    #[test]
    fn wire_round_trip() {
        let e = Error::new("c", "m").with_details(vec![1, 2]);
        let back = Error::from_parts(e.code.clone(), e.message.clone(), e.details_json());
        assert_eq!(e, back);
    }
}
