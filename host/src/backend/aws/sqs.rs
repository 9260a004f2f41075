//! The AWS backend's `WorkQueue`: an SQS queue and its dead-letter queue.
//!
//! Queue URL = `QUEUE_URL_PREFIX` + queue name (or looked up by name).
//! The dead-letter queue is wired by a redrive policy (`weft aws init`):
//! SQS itself moves a message there after `maxReceiveCount` receives.

use crate::backend::aws::AwsSettings;
use crate::backend::aws::queue_error;
use crate::backend::{Delivery, MAX_DELAY, QueueError, WorkQueue};
use crate::model::Envelope;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use std::time::Duration;

/// SQS's longest long-poll wait.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// `delay` in SQS's whole seconds, rounded up: SQS would truncate 250 ms
/// to 0 s, and a message meant to wait would come straight back (a busy
/// run's retry turning into a receive/send/delete loop). Never earlier than
/// asked; at most a second later.
fn whole_seconds(delay: Duration) -> i32 {
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// A work queue on SQS.
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dead_letter_url: String,
}

impl SqsQueue {
    /// Resolves the queue URLs: from `QUEUE_URL_PREFIX` when set, otherwise
    /// by asking SQS for the queues' URLs by name.
    pub async fn connect(client: Client, settings: &AwsSettings) -> Result<Self, QueueError> {
        let dlq = settings.dead_letter_queue_name();
        let (url, dead_letter_url) = match &settings.queue_url_prefix {
            Some(prefix) => (
                format!("{prefix}{}", settings.queue_name),
                format!("{prefix}{dlq}"),
            ),
            None => (
                lookup(&client, &settings.queue_name).await?,
                lookup(&client, &dlq).await?,
            ),
        };
        Ok(Self {
            client,
            url,
            dead_letter_url,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn receive_from(
        &self,
        url: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.min(MAX_WAIT).as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(queue_error)?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let receipt = m.receipt_handle()?.to_string();
                let body = m.body().unwrap_or_default().to_string();
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Some(Delivery {
                    envelope: serde_json::from_str(&body).map_err(|_| body),
                    receipt,
                    receive_count,
                })
            })
            .collect())
    }
}

async fn lookup(client: &Client, name: &str) -> Result<String, QueueError> {
    let out = client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| {
            QueueError::Backend(format!(
                "queue {name:?} not found (run `weft aws init`): {}",
                queue_error(e)
            ))
        })?;
    out.queue_url()
        .map(str::to_string)
        .ok_or_else(|| QueueError::Backend(format!("SQS returned no URL for queue {name:?}")))
}

#[async_trait]
impl WorkQueue for SqsQueue {
    async fn send(&self, envelope: &Envelope, delay: Duration) -> Result<(), QueueError> {
        let body =
            serde_json::to_string(envelope).map_err(|e| QueueError::BadMessage(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(whole_seconds(delay.min(MAX_DELAY)))
            .send()
            .await
            .map_err(queue_error)?;
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.receive_from(&self.url, max, wait).await
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(queue_error)?;
        Ok(())
    }

    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(whole_seconds(delay.min(Duration::from_secs(43_200))))
            .send()
            .await
            .map_err(queue_error)?;
        Ok(())
    }

    async fn receive_dead(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        self.receive_from(&self.dead_letter_url, max, Duration::ZERO)
            .await
    }

    async fn ack_dead(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.dead_letter_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(queue_error)?;
        Ok(())
    }

    async fn backlog(&self) -> Result<Option<u64>, QueueError> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(queue_error)?;
        let ready = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse::<u64>().ok());
        Ok(ready)
    }
}
