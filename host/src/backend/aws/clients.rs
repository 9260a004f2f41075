//! SDK clients for DynamoDB, SQS and S3, built from one configuration with
//! one request counter, pointed at AWS or at an emulator.

use super::{AwsSettings, RequestCounter};
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// The SDK's configuration loader with the one HTTP client (rustls, ring)
/// this crate builds in: credentials, profiles and regions as usual.
pub fn config_loader() -> aws_config::ConfigLoader {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(http)
}

/// SDK clients sharing one configuration and one request counter.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub counter: RequestCounter,
}

impl AwsClients {
    /// Connects with the default credential chain, or with `credentials`
    /// when given (tests against an emulator).
    pub async fn connect(settings: &AwsSettings, credentials: Option<Credentials>) -> Self {
        let mut loader = config_loader().region(Region::new(settings.region.clone()));
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(c) = credentials {
            loader = loader.credentials_provider(c);
        }
        let shared = loader.load().await;
        let counter = RequestCounter::default();
        let dynamo = aws_sdk_dynamodb::config::Builder::from(&shared)
            .interceptor(counter.clone())
            .build();
        let sqs = aws_sdk_sqs::config::Builder::from(&shared)
            .interceptor(counter.clone())
            .build();
        // Emulators serve buckets by path, not by virtual host.
        let s3 = aws_sdk_s3::config::Builder::from(&shared)
            .interceptor(counter.clone())
            .force_path_style(settings.endpoint.is_some())
            .build();
        Self {
            dynamo: aws_sdk_dynamodb::Client::from_conf(dynamo),
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
            s3: aws_sdk_s3::Client::from_conf(s3),
            counter,
        }
    }
}
