//! Conversions between the guest's WIT types and the host's model, with
//! the checks every guest-supplied value passes on the way in (size, JSON
//! validity). Shared by the replay core and the RPC runner.

use crate::config::Limits;
use crate::engine::bindings::workflow::weft::workflow::types;
use crate::model::{ErrorCode, ErrorInfo, RetryPolicy, StepOptions};

/// Validates a JSON payload produced by a guest.
pub fn check_payload(limits: &Limits, what: &str, json: &str) -> Result<(), ErrorInfo> {
    if json.len() > limits.max_payload_bytes {
        return Err(ErrorInfo::host(
            ErrorCode::PayloadTooLarge,
            format!(
                "{what} is {} bytes; the limit is {} (WEFT_MAX_PAYLOAD_BYTES)",
                json.len(),
                limits.max_payload_bytes
            ),
        ));
    }
    if let Err(e) = crate::model::json::validate(json) {
        return Err(ErrorInfo::host(
            ErrorCode::InvalidOutput,
            format!("{what} is not valid JSON: {e}"),
        ));
    }
    Ok(())
}

/// Converts a guest error into the host's, validating its JSON details.
pub fn error_from_guest(limits: &Limits, e: types::Error) -> Result<ErrorInfo, ErrorInfo> {
    let details = match e.details {
        None => None,
        Some(text) => {
            check_payload(limits, "the error details", &text)?;
            serde_json::from_str(&text).ok()
        }
    };
    Ok(ErrorInfo {
        code: truncated(e.code, MAX_ERROR_CODE_BYTES),
        message: truncated(e.message, MAX_ERROR_MESSAGE_BYTES),
        details,
    })
}

pub fn error_to_guest(e: ErrorInfo) -> types::Error {
    types::Error {
        code: e.code,
        message: e.message,
        details: e.details.map(|d| d.to_string()),
    }
}

pub fn options_from_guest(o: types::StepOptions) -> StepOptions {
    StepOptions {
        retry: o
            .retry
            .map(|r| RetryPolicy {
                max_attempts: r.max_attempts.max(1),
                initial_delay_ms: r.initial_delay_ms,
                backoff_factor: r.backoff_factor,
                max_delay_ms: r.max_delay_ms,
                jitter: r.jitter,
            })
            .unwrap_or_default(),
        timeout_ms: o.timeout_ms,
    }
}

/// Longest error code kept from a guest; codes are identifiers.
pub const MAX_ERROR_CODE_BYTES: usize = 128;
/// Longest error message kept from a guest: a message is for people, and
/// an outsized one must not make the step's record too large to store
/// (which would turn a recorded outcome into a lost one).
pub const MAX_ERROR_MESSAGE_BYTES: usize = 8 * 1024;

/// `text` cut to at most `max` bytes on a character boundary, marked as cut.
fn truncated(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("...");
    text
}

/// Converts an RPC guest's error, keeping its code; details that fail
/// validation replace it with the validation error.
pub fn error_from_rpc(limits: &Limits, e: types::Error) -> ErrorInfo {
    error_from_guest(limits, e).unwrap_or_else(|e| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_guest_error_messages_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_MESSAGE_BYTES);
        let cut = truncated(long, MAX_ERROR_MESSAGE_BYTES);
        assert!(cut.len() <= MAX_ERROR_MESSAGE_BYTES);
        assert!(cut.ends_with("..."));
        assert_eq!(truncated("short".into(), 16), "short");
    }
}
