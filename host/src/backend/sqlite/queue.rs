//! The embedded durable queue: a table in the backend's SQLite database.

use super::SqliteBackend;
use crate::backend::{Delivery, MAX_DELAY, QueueError, WorkQueue};
use crate::model::Envelope;
use async_trait::async_trait;
use rusqlite::params;
use std::time::{Duration, Instant};

/// How often a receiver with nothing to do looks again. Sends from this
/// process wake it immediately; this only bounds the latency for messages
/// sent by another process or becoming visible after a delay.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

fn parse_body(body: String) -> Result<Envelope, String> {
    serde_json::from_str(&body).map_err(|_| body)
}

#[async_trait]
impl WorkQueue for SqliteBackend {
    async fn send(&self, envelope: &Envelope, delay: Duration) -> Result<(), QueueError> {
        let body =
            serde_json::to_string(envelope).map_err(|e| QueueError::BadMessage(e.to_string()))?;
        let visible_at = self.clock.now_millis() + delay.min(MAX_DELAY).as_millis() as u64;
        self.with_queue_conn(move |c| {
            c.execute(
                "INSERT INTO queue (body, visible_at) VALUES (?1, ?2)",
                params![body, visible_at as i64],
            )
            .map_err(QueueError::backend)?;
            Ok(())
        })
        .await?;
        self.queue_signal.notify_waiters();
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.queue_signal.notified();
            let batch = self.receive_now(max).await?;
            if !batch.is_empty() || Instant::now() >= deadline {
                return Ok(batch);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(remaining.min(POLL_INTERVAL), notified).await;
        }
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        let receipt = receipt.to_string();
        self.with_queue_conn(move |c| {
            c.execute(
                "DELETE FROM queue WHERE receipt = ?1 AND dead = 0",
                [receipt],
            )
            .map_err(QueueError::backend)?;
            Ok(())
        })
        .await
    }

    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let receipt = receipt.to_string();
        let visible_at = self.clock.now_millis() + delay.min(MAX_DELAY).as_millis() as u64;
        self.with_queue_conn(move |c| {
            c.execute(
                "UPDATE queue SET visible_at = ?2 WHERE receipt = ?1 AND dead = 0",
                params![receipt, visible_at as i64],
            )
            .map_err(QueueError::backend)?;
            Ok(())
        })
        .await
    }

    async fn receive_dead(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        self.with_queue_conn(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT id, body, receive_count FROM queue WHERE dead = 1 ORDER BY id LIMIT ?1",
                )
                .map_err(QueueError::backend)?;
            let rows = stmt
                .query_map([max as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, u32>(2)?,
                    ))
                })
                .map_err(QueueError::backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(QueueError::backend)?;
            Ok(rows
                .into_iter()
                .map(|(id, body, receive_count)| Delivery {
                    envelope: parse_body(body),
                    receipt: format!("dead-{id}"),
                    receive_count,
                })
                .collect())
        })
        .await
    }

    async fn ack_dead(&self, receipt: &str) -> Result<(), QueueError> {
        let Some(id) = receipt
            .strip_prefix("dead-")
            .and_then(|s| s.parse::<i64>().ok())
        else {
            return Err(QueueError::Backend(format!(
                "not a dead-letter receipt: {receipt}"
            )));
        };
        self.with_queue_conn(move |c| {
            c.execute("DELETE FROM queue WHERE id = ?1 AND dead = 1", [id])
                .map_err(QueueError::backend)?;
            Ok(())
        })
        .await
    }

    async fn backlog(&self) -> Result<Option<u64>, QueueError> {
        let now = self.clock.now_millis() as i64;
        self.with_queue_conn(move |c| {
            // A range of the `queue_ready` index.
            let ready: i64 = c
                .query_row(
                    "SELECT count(*) FROM queue WHERE dead = 0 AND visible_at <= ?1",
                    [now],
                    |r| r.get(0),
                )
                .map_err(QueueError::backend)?;
            Ok(Some(ready as u64))
        })
        .await
    }
}

impl SqliteBackend {
    /// One receive attempt: claims visible messages, dead-lettering those
    /// received too often, in a single transaction.
    async fn receive_now(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let visibility = self.queue_settings.visibility_timeout.as_millis() as i64;
        let max_receives = self.queue_settings.max_receives;
        let now = self.clock.now_millis() as i64;
        self.with_queue_conn(move |c| {
            let err = QueueError::backend;
            let tx = c.transaction().map_err(err)?;
            let candidates = {
                let mut stmt = tx
                    .prepare(
                        "SELECT id, body, receive_count FROM queue
                         WHERE dead = 0 AND visible_at <= ?1 ORDER BY visible_at, id LIMIT ?2",
                    )
                    .map_err(err)?;
                stmt.query_map(params![now, max as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, u32>(2)?))
                })
                .map_err(err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(err)?
            };
            let mut out = Vec::with_capacity(candidates.len());
            for (id, body, count) in candidates {
                if count >= max_receives {
                    tx.execute("UPDATE queue SET dead = 1, receipt = NULL WHERE id = ?1", [id])
                        .map_err(err)?;
                    continue;
                }
                let receipt = format!("{id}-{}", uuid::Uuid::new_v4().simple());
                tx.execute(
                    "UPDATE queue SET visible_at = ?2, receive_count = receive_count + 1, receipt = ?3 WHERE id = ?1",
                    params![id, now + visibility, receipt],
                )
                .map_err(err)?;
                out.push(Delivery {
                    envelope: parse_body(body),
                    receipt,
                    receive_count: count + 1,
                });
            }
            tx.commit().map_err(err)?;
            Ok(out)
        })
        .await
    }
}
