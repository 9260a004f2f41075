//! Sending events to runs: validate, store in the run's inbox, and resume
//! the run so a wait for the event takes it.

use super::{ServiceError, Weft};
use crate::backend::{NewEvent, StoreError};
use crate::model::{EventSent, MAX_EVENT_ID, RunId, WorkMessage, valid_event_id, valid_event_name};

impl Weft {
    /// Sends event `name` with JSON `payload` to run `id`.
    ///
    /// `event_id` makes the send idempotent: a second send with the same id
    /// (and name) changes nothing and answers [`EventSent::Duplicate`].
    /// Without one the event gets a random id. The event waits in the
    /// inbox until a wait of its name takes it; the run is resumed now
    /// (also on a duplicate not yet taken, so a send retried after a lost
    /// resume still wakes the run).
    pub async fn send_event(
        &self,
        id: &RunId,
        name: &str,
        payload: &str,
        event_id: Option<&str>,
    ) -> Result<EventSent, ServiceError> {
        if !valid_event_name(name) {
            return Err(ServiceError::InvalidEvent(format!(
                "{name:?} is not an event name: 1 to 128 of A-Z a-z 0-9 _ - . :"
            )));
        }
        if let Some(event_id) = event_id.filter(|e| !valid_event_id(e)) {
            return Err(ServiceError::InvalidEvent(format!(
                "{event_id:?} is not an event id: 1 to {MAX_EVENT_ID} printable ASCII characters"
            )));
        }
        self.check_client_payload("the event payload", payload)?;
        let event = NewEvent {
            run_id: id.clone(),
            name: name.to_string(),
            event_id: event_id.map_or_else(
                || format!("{:032x}", rand::random::<u128>()),
                str::to_string,
            ),
            payload: payload.to_string(),
            sent_at: self.now(),
        };
        let sent = match self.state.send_event(event).await {
            Ok(sent) => sent,
            Err(StoreError::NotFound(_)) => return Err(ServiceError::UnknownRun(id.to_string())),
            Err(e @ StoreError::Conflict(_)) => {
                return Err(match self.state.get_run(id).await? {
                    Some(run) if run.status.is_terminal() => ServiceError::NotRunning {
                        id: id.to_string(),
                        status: run.status,
                    },
                    None => ServiceError::UnknownRun(id.to_string()),
                    Some(_) => ServiceError::Store(e),
                });
            }
            Err(e) => return Err(e.into()),
        };
        if sent.record().taken_by.is_none() {
            let resume = WorkMessage::Resume { run_id: id.clone() };
            self.send(resume, None).await?;
        }
        Ok(sent)
    }
}
