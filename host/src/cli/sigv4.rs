//! SigV4 signing of API requests, for a Lambda HTTP endpoint behind API
//! Gateway's IAM authorization (the deploy template's default).

use anyhow::Context as _;
use aws_credential_types::provider::ProvideCredentials as _;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use std::time::SystemTime;

/// Signs requests with the credentials of the standard AWS chain (env,
/// profile, SSO, instance role) for service `execute-api`.
pub struct Signer {
    identity: aws_smithy_runtime_api::client::identity::Identity,
    region: String,
}

impl Signer {
    /// Loads credentials; the region comes from the endpoint's host name
    /// (`<api>.execute-api.<region>.amazonaws.com`), else from the AWS
    /// configuration.
    pub async fn from_env(base_url: &str) -> anyhow::Result<Self> {
        let config = crate::backend::aws::config_loader().load().await;
        let provider = config
            .credentials_provider()
            .context("no AWS credentials configured for signing")?;
        let credentials = provider
            .provide_credentials()
            .await
            .context("loading AWS credentials for signing")?;
        let region = region_of(base_url)
            .or_else(|| config.region().map(|r| r.to_string()))
            .context("cannot tell the API's region: set AWS_REGION")?;
        Ok(Self {
            identity: credentials.into(),
            region,
        })
    }

    /// Adds the SigV4 headers (`authorization`, `x-amz-date`, and the
    /// session token if any) to `request`, covering its body.
    pub fn sign(&self, request: &mut reqwest::Request) -> anyhow::Result<()> {
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("execute-api")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .context("building signing parameters")?
            .into();
        let body = request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .unwrap_or_default();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.url().as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .context("the request cannot be signed")?;
        let (instructions, _) = sign(signable, &params)
            .context("signing the request")?
            .into_parts();
        let (headers, _) = instructions.into_parts();
        for header in headers {
            let value = reqwest::header::HeaderValue::from_str(header.value())
                .context("a signature header is not valid")?;
            request.headers_mut().insert(header.name(), value);
        }
        Ok(())
    }
}

/// The region in an API Gateway host name, if the URL has one.
fn region_of(base_url: &str) -> Option<String> {
    let host = reqwest::Url::parse(base_url).ok()?.host_str()?.to_string();
    let mut labels = host.split('.');
    labels.next()?;
    (labels.next()? == "execute-api").then_some(())?;
    labels.next().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_an_api_gateway_host() {
        assert_eq!(
            region_of("https://abc123.execute-api.eu-west-1.amazonaws.com/").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of("http://127.0.0.1:8080"), None);
    }
}
