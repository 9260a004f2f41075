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
    /// before, or past its expiry, is [`ServiceError::CallbackClosed`] and
    /// nothing changes.
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
        let done = match self.state.complete_callback(&hash, outcome, now).await {
            Ok(done) => done,
            Err(StoreError::NotFound(_)) => return Err(ServiceError::UnknownCallback),
            Err(StoreError::Conflict(_)) => {
                return Err(match self.state.get_callback(&hash).await? {
                    Some(cb) => closed(&cb),
                    None => ServiceError::UnknownCallback,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let resume = WorkMessage::Resume {
            run_id: done.run_id.clone(),
        };
        self.send(resume, None).await?;
        Ok(done)
    }
}
