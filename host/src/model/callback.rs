//! Callbacks: single-use tokens a run hands to another system, which
//! completes them once with a result or an error.

use super::{Digest, ErrorInfo, Millis, RunId, StepOutcome};
use serde::{Deserialize, Serialize};

/// What every token starts with, so one is recognisable in a log or URL.
pub const TOKEN_PREFIX: &str = "wcb_";

/// How a callback is stored and looked up: the token's sha256. The token
/// itself is never stored with the callback, so reading the callback
/// store does not give the power to complete one.
pub fn token_hash(token: &str) -> String {
    Digest::of(token.as_bytes()).as_str().to_string()
}

/// Where a callback stands. `Completed` and `Expired` are final, and a
/// callback leaves `Waiting` by exactly one conditional write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "state")]
pub enum CallbackState {
    Waiting,
    Completed {
        result: Option<String>,
        error: Option<ErrorInfo>,
        completed_at: Millis,
    },
    Expired,
}

/// A callback as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct CallbackRecord {
    /// [`token_hash`] of the token.
    pub hash: String,
    pub run_id: RunId,
    /// The step that created it.
    pub step: String,
    pub created_at: Millis,
    /// After this, completing it is refused and its wait times out.
    pub expires_at: Option<Millis>,
    pub state: CallbackState,
}

impl CallbackRecord {
    /// Whether it can still be completed at `now`.
    pub fn open_at(&self, now: Millis) -> bool {
        self.state == CallbackState::Waiting && self.expires_at.is_none_or(|at| now < at)
    }

    /// The outcome it was completed with, if it was.
    pub fn outcome(&self) -> Option<StepOutcome> {
        match &self.state {
            CallbackState::Completed { result, error, .. } => Some(match error {
                Some(e) => Err(e.clone()),
                None => Ok(result.clone().unwrap_or_else(|| "null".into())),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_stored_as_a_hash_that_does_not_contain_it() {
        let token = format!("{TOKEN_PREFIX}{}", "ab".repeat(32));
        let hash = token_hash(&token);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&token[TOKEN_PREFIX.len()..]));
        assert_eq!(hash, token_hash(&token));
        assert_ne!(hash, token_hash(&format!("{token}0")));
    }
}
