//! The worker function: SQS batches and the scheduled sweep.

use crate::model::Envelope;
use crate::service::worker::sweep_runs;
use crate::service::{Weft, invocation};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// Handles one Lambda event, an invocation that ends at `ends_at`: an SQS
/// batch (`Records`), or a scheduled event (EventBridge), which runs the
/// recovery sweep, fires the schedules that are due and deletes the runs
/// whose retention ran out. Every deadline inside is derived from `ends_at`
/// ([`invocation`]).
pub async fn handle_event(
    svc: &Arc<Weft>,
    event: Value,
    ends_at: Option<Instant>,
) -> Result<Value, lambda_runtime::Error> {
    let result = match ends_at {
        Some(end) => invocation::within(end, dispatch(svc, event)).await,
        None => dispatch(svc, event).await,
    };
    super::log_metrics(svc);
    result
}

async fn dispatch(svc: &Arc<Weft>, event: Value) -> Result<Value, lambda_runtime::Error> {
    if event.get("Records").is_some() {
        let batch: SqsEvent = serde_json::from_value(event)?;
        return Ok(handle_batch(svc, batch).await);
    }
    if event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        let resumed = sweep_runs(svc).await.map_err(|e| e.to_string())?;
        let fired = svc.fire_due_schedules().await.map_err(|e| e.to_string())?;
        let purged = svc
            .purge_expired(svc.now())
            .await
            .map_err(|e| e.to_string())?;
        return Ok(json!({ "resumed": resumed, "schedulesFired": fired, "purged": purged }));
    }
    Err(format!(
        "not an SQS batch or a scheduled event: {:.200}",
        event.to_string()
    )
    .into())
}

/// Processes a batch concurrently and reports exactly the messages that
/// failed, so one poison message never sends its whole batch back.
pub async fn handle_batch(svc: &Arc<Weft>, batch: SqsEvent) -> Value {
    let dead_letter_suffix = "-dlq";
    let work = batch.records.into_iter().map(|record| {
        let svc = Arc::clone(svc);
        async move {
            let from_dlq = record
                .event_source_arn
                .as_deref()
                .is_some_and(|arn| arn.ends_with(dead_letter_suffix));
            let ok = if from_dlq {
                dead_letter(&svc, &record).await
            } else {
                work_message(&svc, &record).await
            };
            (record.message_id, ok)
        }
    });
    // A batch is at most 10 messages: handle them concurrently.
    let failures: Vec<Value> = futures::future::join_all(work)
        .await
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(id, _)| json!({ "itemIdentifier": id.unwrap_or_default() }))
        .collect();
    json!({ "batchItemFailures": failures })
}

fn envelope(record: &SqsMessage) -> Option<Envelope> {
    serde_json::from_str(record.body.as_deref()?).ok()
}

/// A work message. `false` reports it failed (SQS redelivers it, and after
/// the redrive limit moves it to the dead-letter queue).
async fn work_message(svc: &Arc<Weft>, record: &SqsMessage) -> bool {
    let Some(envelope) = envelope(record) else {
        tracing::error!(message = ?record.message_id, "a message is not a Weft envelope; failing it towards the DLQ");
        return false;
    };
    match svc.process_envelope(&envelope).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(run = ?envelope.message.run_id(), "handling {:?} failed: {e}", envelope.message);
            false
        }
    }
}

/// A dead letter: fail its run with the reason.
async fn dead_letter(svc: &Arc<Weft>, record: &SqsMessage) -> bool {
    let Some(envelope) = envelope(record) else {
        tracing::error!(message = ?record.message_id, body = ?record.body, "discarding an unreadable dead letter");
        return true;
    };
    let receives = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    svc.handle_dead_letter(&envelope, receives).await.is_ok()
}
