//! The Weft worker as an AWS Lambda function: SQS batches from the work
//! queue and its dead-letter queue, and the scheduled recovery sweep.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    weft::lambda::init_logging();
    let svc = weft::lambda::service_from_env().await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let svc = Arc::clone(&svc);
            async move {
                let limit = svc.settings().invocation_limit;
                let ends_at = weft::lambda::invocation_end(&event.context, limit);
                weft::lambda::worker::handle_event(&svc, event.payload, ends_at).await
            }
        },
    ))
    .await
}
