//! Values a guest hands back across the WIT boundary: a step's or the
//! run's JSON result, an error's code, message and details, a step's
//! options. The canonical ABI already guarantees UTF-8 strings (a guest
//! lifting bytes that are not is trapped by wasmtime, and that trap is
//! tested with the hostile guests); what remains is the host's checks of
//! the strings themselves, which this target drives with malformed JSON
//! and strings far over the limits.
//!
//! Input: arbitrary strings, each repeated a chosen number of times so a
//! small input can be a huge value. The limits are shrunk to 1 KiB so
//! "too large" is within reach of every input.

use arbitrary::{Arbitrary, Unstructured};
use weft::config::Limits;
use weft::engine::bindings::workflow::weft::workflow::types;
use weft::engine::convert::{
    MAX_ERROR_CODE_BYTES, MAX_ERROR_MESSAGE_BYTES, check_payload, error_from_guest, error_from_rpc,
};
use weft::model::ErrorCode;

const PAYLOAD_LIMIT: usize = 1024;

/// A string as the fuzzer describes it: a piece and how often it repeats.
#[derive(Arbitrary, Debug)]
struct Text {
    piece: String,
    repeat: u8,
}

/// Longest value built: past every limit checked (the 8 KiB message cap
/// included), and no longer, so executions stay cheap.
const MAX_VALUE_BYTES: usize = 3 * MAX_ERROR_MESSAGE_BYTES;

impl Text {
    fn value(&self) -> String {
        let fits = MAX_VALUE_BYTES / self.piece.len().max(1);
        let times = (usize::from(self.repeat % 40) + 1).min(fits.max(1));
        self.piece.repeat(times)
    }
}

#[derive(Arbitrary, Debug)]
struct Values {
    output: Text,
    code: Text,
    message: Text,
    details: Option<Text>,
}

pub fn run(data: &[u8]) {
    let Ok(values) = Values::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let limits = Limits {
        max_payload_bytes: PAYLOAD_LIMIT,
        ..Limits::default()
    };

    let output = values.output.value();
    let is_json = serde_json::from_str::<serde_json::Value>(&output).is_ok();
    match check_payload(&limits, "the output", &output) {
        Ok(()) => assert!(
            output.len() <= PAYLOAD_LIMIT && is_json,
            "{output:?} passed"
        ),
        Err(e) if output.len() > PAYLOAD_LIMIT => {
            assert_eq!(e.code, ErrorCode::PayloadTooLarge.as_str(), "{e:?}")
        }
        Err(e) => {
            assert!(!is_json, "valid JSON refused: {output:?}");
            assert_eq!(e.code, ErrorCode::InvalidOutput.as_str(), "{e:?}");
        }
    }

    let code = values.code.value();
    let message = values.message.value();
    let details = values.details.as_ref().map(Text::value);
    let error = types::Error {
        code: code.clone(),
        message: message.clone(),
        details: details.clone(),
    };
    let rpc_error = types::Error {
        code: code.clone(),
        message: message.clone(),
        details: details.clone(),
    };
    match error_from_guest(&limits, error) {
        Ok(info) => {
            assert!(
                info.code.len() <= MAX_ERROR_CODE_BYTES,
                "{}",
                info.code.len()
            );
            assert!(info.message.len() <= MAX_ERROR_MESSAGE_BYTES);
            kept_or_cut(&code, &info.code);
            kept_or_cut(&message, &info.message);
            let kept = details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok());
            assert_eq!(info.details, kept, "details {details:?}");
            assert_eq!(error_from_rpc(&limits, rpc_error), info);
        }
        Err(refusal) => {
            let d = details.expect("only details can be refused");
            assert!(
                d.len() > PAYLOAD_LIMIT || serde_json::from_str::<serde_json::Value>(&d).is_err(),
                "details {d:?} refused: {refusal:?}"
            );
            assert_eq!(error_from_rpc(&limits, rpc_error), refusal);
        }
    }
}

/// `kept` is `original`, or a prefix of it marked as cut.
fn kept_or_cut(original: &str, kept: &str) {
    if kept == original {
        return;
    }
    let prefix = kept.strip_suffix("...").expect("a cut value ends in ...");
    assert!(
        original.starts_with(prefix),
        "{kept:?} is not a cut of the original"
    );
}
