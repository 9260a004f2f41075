//! The Weft API as an AWS Lambda function behind API Gateway (REST v1 or
//! HTTP API v2): the same router as `weft dev`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    weft::lambda::init_logging();
    let svc = weft::lambda::service_from_env().await?;
    lambda_http::run(weft::lambda::http_app(svc)).await
}
