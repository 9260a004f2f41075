//! Counting AWS requests, and the bytes their responses carried, by
//! operation: every request is money on AWS, and DynamoDB reads are billed
//! by the bytes they return.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Counts HTTP requests sent, and response bytes received, by
/// `service.operation` (retries included).
#[derive(Clone, Debug, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    bytes: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// The `service.operation` a request is for.
fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| format!("{}.{}", m.service(), m.name()))
        .unwrap_or_else(|| "unknown".into())
}

impl RequestCounter {
    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Response bytes received so far, by operation.
    pub fn bytes(&self) -> BTreeMap<String, u64> {
        self.bytes.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn reset(&self) {
        for map in [&self.counts, &self.bytes] {
            if let Ok(mut c) = map.lock() {
                c.clear();
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "weft-request-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(operation(cfg)).or_insert(0) += 1;
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        let length = response
            .headers()
            .get("content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .or_else(|| response.body().content_length())
            .unwrap_or(0);
        if let Ok(mut c) = self.bytes.lock() {
            *c.entry(operation(cfg)).or_insert(0) += length;
        }
        Ok(())
    }
}
