//! axum's `Path` and `Query` extractors, refusing in the API's JSON error
//! shape. axum's own rejections are plain text (`?wait=` with no number,
//! a path segment that decodes to bytes that are not UTF-8), which a client
//! that reads every error as JSON cannot parse; the router fuzz target
//! found them. Handlers use these under the same names.

use super::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The path's parameters, or a JSON `invalid_path` refusal.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError::new(e.status(), "invalid_path", e.body_text())),
        }
    }
}

/// The query string's parameters, or a JSON `invalid_query` refusal.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError::new(e.status(), "invalid_query", e.body_text())),
        }
    }
}
