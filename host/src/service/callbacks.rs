//! Completing callbacks from outside: the token names the callback (by its
//! hash), the completion lands once, and the run is resumed to take it.

use super::{ServiceError, Weft};
use crate::backend::StoreError;
use crate::model::{CallbackRecord, CallbackState, StepOutcome, WorkMessage, token_hash};

/// A fresh callback token: 256 bits from the operating system's generator,
/// hex-encoded after [`crate::model::TOKEN_PREFIX`].
pub(super) fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{}{}", crate::model::TOKEN_PREFIX, hex::encode(bytes))
}

impl Weft {
    /// Completes the callback `token` with `outcome` and resumes its run.
    ///
    /// An unknown token is [`ServiceError::UnknownCallback`], whatever it
    /// looks like, so a wrong guess learns nothing. A callback completed
    /// before with another outcome, or past its expiry, is
    /// [`ServiceError::CallbackClosed`] and nothing changes.
    ///
    /// Completing it again with the outcome it holds answers as the first
    /// completion did (and resumes the run again, in case the first call
    /// failed before it could): a client that got no answer, or a 503
    /// from a write that did land, can retry safely.
    pub async fn complete_callback(
        &self,
        token: &str,
        outcome: StepOutcome,
    ) -> Result<CallbackRecord, ServiceError> {
        let payload = match &outcome {
            Ok(json) => Some(json.clone()),
            Err(e) => e.details.as_ref().map(|d| d.to_string()),
        };
        if let Some(payload) = payload {
            self.check_client_payload("the callback's completion", &payload)?;
        }
        let hash = token_hash(token);
        let closed = |cb: &CallbackRecord| {
            ServiceError::CallbackClosed(match cb.state {
                CallbackState::Completed { .. } => "the callback was already completed".into(),
                _ => "the callback has expired".into(),
            })
        };
        let Some(callback) = self.state.get_callback(&hash).await? else {
            return Err(ServiceError::UnknownCallback);
        };
        if holds(&callback, &outcome) {
            return self.resume_completed(callback).await;
        }
        let now = self.now();
        if !callback.open_at(now) {
            return Err(closed(&callback));
        }
        let run = self.state.get_run(&callback.run_id).await?;
        if let Some(run) = run.filter(|r| r.status.is_terminal()) {
            return Err(ServiceError::NotRunning {
                id: run.id.to_string(),
                status: run.status,
            });
        }
        let done = match self
            .state
            .complete_callback(&hash, outcome.clone(), now)
            .await
        {
            Ok(done) => done,
            Err(StoreError::NotFound(_)) => return Err(ServiceError::UnknownCallback),
            // Another completion won, or this one did on an earlier try
            // of the same write (an ambiguous failure the SDK retried).
            Err(StoreError::Conflict(_)) => {
                return match self.state.get_callback(&hash).await? {
                    Some(cb) if holds(&cb, &outcome) => self.resume_completed(cb).await,
                    Some(cb) => Err(closed(&cb)),
                    None => Err(ServiceError::UnknownCallback),
                };
            }
            Err(e) => return Err(e.into()),
        };
        self.resume_completed(done).await
    }

    /// Resumes the run of a completed callback so its wait takes it.
    async fn resume_completed(
        &self,
        callback: CallbackRecord,
    ) -> Result<CallbackRecord, ServiceError> {
        let resume = WorkMessage::Resume {
            run_id: callback.run_id.clone(),
        };
        self.send(resume, None).await?;
        Ok(callback)
    }
}

/// Whether `callback` was completed with `outcome`: the same JSON result
/// (compared as values, not text), or an error with the same code,
/// message and details.
fn holds(callback: &CallbackRecord, outcome: &StepOutcome) -> bool {
    let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
    match (callback.outcome(), outcome) {
        (Some(Ok(stored)), Ok(sent)) => {
            stored == *sent || json(&stored).is_some_and(|v| Some(v) == json(sent))
        }
        (Some(Err(stored)), Err(sent)) => {
            stored.code == sent.code
                && stored.message == sent.message
                && stored.details == sent.details
        }
        _ => false,
    }
}
