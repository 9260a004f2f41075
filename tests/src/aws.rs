//! Test environments on a real AWS-API emulator (moto's server, started by
//! `make test`, whose address arrives in `WEFT_TEST_AWS_ENDPOINT`). Each
//! environment gets its own tables, queues and bucket, so tests never see
//! each other's data.

use crate::conformance::Backend;
use aws_credential_types::Credentials;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use weft::backend::aws::blobs::S3Blobs;
use weft::backend::aws::dynamo::DynamoStore;
use weft::backend::aws::init::{QueueOptions, init};
use weft::backend::aws::s3::AwsModuleStore;
use weft::backend::aws::sqs::SqsQueue;
use weft::backend::aws::{AwsClients, AwsSettings};

/// The emulator's address; the AWS suites need it.
pub fn endpoint() -> String {
    std::env::var("WEFT_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "WEFT_TEST_AWS_ENDPOINT is not set: run the AWS suites through `make test` (which installs and \
             starts moto), or start `.venv/bin/python scripts/moto-server -p 5123` and set WEFT_TEST_AWS_ENDPOINT=http://127.0.0.1:5123"
        )
    })
}

/// Credentials the emulator accepts; also given to child processes.
pub const CREDENTIALS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
];

pub fn credentials() -> Credentials {
    Credentials::new("test", "test", None, None, "weft-tests")
}

/// A provisioned, isolated AWS environment.
pub struct AwsEnv {
    pub settings: AwsSettings,
    pub clients: AwsClients,
}

impl AwsEnv {
    /// Names for a fresh environment, with nothing created yet.
    pub async fn unprovisioned() -> Self {
        // Random, not time-based: tests running in parallel provision in the
        // same millisecond.
        let prefix = format!("t{:010x}", rand::random::<u64>() & 0xff_ffff_ffff);
        let settings = AwsSettings {
            endpoint: Some(endpoint()),
            region: "us-east-1".into(),
            queue_url_prefix: None,
            ..AwsSettings::from_env()
        }
        .with_prefix(&prefix);
        let clients = AwsClients::connect(&settings, Some(credentials())).await;
        Self { settings, clients }
    }

    /// Provisions fresh resources (through the same code as `weft aws init`).
    pub async fn provision(queue: QueueOptions) -> Self {
        let Self {
            mut settings,
            clients,
        } = Self::unprovisioned().await;
        init(&clients, &settings, queue)
            .await
            .expect("weft aws init against the emulator");
        let url = clients
            .sqs
            .get_queue_url()
            .queue_name(&settings.queue_name)
            .send()
            .await
            .expect("queue URL")
            .queue_url()
            .unwrap_or_default()
            .to_string();
        settings.queue_url_prefix = url.strip_suffix(&settings.queue_name).map(str::to_string);
        clients.counter.reset();
        Self { settings, clients }
    }

    /// Environment variables that point a `weft` process here.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .settings
            .to_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        env.extend(
            CREDENTIALS_ENV
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env
    }

    /// Every item of every state table, as (table, attributes): what a
    /// test checks on the raw items.
    pub async fn scan_state_tables(
        &self,
    ) -> Vec<(
        String,
        HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    )> {
        let mut all = Vec::new();
        for table in [
            &self.settings.runs_table,
            &self.settings.steps_table,
            &self.settings.history_table,
            &self.settings.logs_table,
        ] {
            let mut start = None;
            loop {
                let page = self
                    .clients
                    .dynamo
                    .scan()
                    .table_name(table)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .expect("scanning a table");
                all.extend(page.items().iter().map(|i| (table.clone(), i.clone())));
                start = page.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
        }
        all
    }

    pub async fn backend(&self, visibility: Duration, max_receives: u32) -> Backend {
        let queue = SqsQueue::connect(self.clients.sqs.clone(), &self.settings)
            .await
            .expect("SQS queue");
        Backend {
            state: Arc::new(DynamoStore::new(
                self.clients.dynamo.clone(),
                &self.settings,
            )),
            queue: Arc::new(queue),
            modules: Arc::new(AwsModuleStore::new(
                self.clients.dynamo.clone(),
                self.clients.s3.clone(),
                &self.settings,
            )),
            blobs: Arc::new(S3Blobs::new(self.clients.s3.clone(), &self.settings)),
            visibility,
            max_receives,
        }
    }
}

/// The queue of the test environments: 1 s visibility, dead-lettering
/// after 3 receives.
const TEST_QUEUE: QueueOptions = QueueOptions {
    visibility_timeout: Duration::from_secs(1),
    max_receives: 3,
};

/// A backend for the conformance and scenario suites.
pub async fn test_backend() -> Backend {
    AwsEnv::provision(TEST_QUEUE)
        .await
        .backend(TEST_QUEUE.visibility_timeout, TEST_QUEUE.max_receives)
        .await
}

/// A fresh environment and the DynamoDB store on it, for tests of the
/// store's own layout and failure handling.
pub async fn test_store() -> (AwsEnv, DynamoStore) {
    let env = AwsEnv::provision(TEST_QUEUE).await;
    let store = DynamoStore::new(env.clients.dynamo.clone(), &env.settings);
    (env, store)
}
