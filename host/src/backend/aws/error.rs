//! The one conversion of AWS SDK errors into the seams' error types.
//!
//! A service error carries AWS's code and message (`ThrottlingException:
//! Rate exceeded`), which is what an operator acts on; anything else (a
//! timeout, a connection failure) is described by the SDK.

use crate::backend::{QueueError, StoreError};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;

/// A readable one-line description of an SDK error.
pub fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or("no message")
        ),
        None => format!("AWS request failed: {e:?}"),
    }
}

/// An SDK error as a [`StoreError`]: [`StoreError::TooLarge`] when
/// DynamoDB refused an item for its size (a write the size checks did not
/// foresee: retrying cannot help), [`StoreError::Backend`] otherwise.
pub(crate) fn store_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let too_large = e.as_service_error().is_some_and(|s| {
        s.code() == Some("ValidationException")
            && s.message()
                .is_some_and(|m| m.to_ascii_lowercase().contains("item size"))
    });
    if too_large {
        StoreError::TooLarge(describe(&e))
    } else {
        StoreError::Backend(describe(&e))
    }
}

/// An SDK error as a [`QueueError::Backend`].
pub(crate) fn queue_error<E, R>(e: SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    QueueError::Backend(describe(&e))
}
