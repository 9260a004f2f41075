//! The AWS backend: DynamoDB for state, SQS for work, S3 (plus a DynamoDB
//! table) for modules, against AWS or an emulator (LocalStack, moto).
//!
//! - `settings.rs`: resource names from the seed's environment variables.
//! - `clients.rs`: SDK clients with one request counter (`counter.rs`).
//! - `error.rs`: the one SDK-error conversion.
//! - `dynamo/`: the [`crate::backend::StateStore`]; `sqs.rs`: the
//!   [`crate::backend::WorkQueue`]; `s3.rs`: the [`crate::backend::ModuleStore`].
//! - `init.rs`: `weft aws init`, creating the tables, queues and bucket.

pub mod blobs;
mod clients;
mod counter;
pub mod dynamo;
mod error;
pub mod init;
pub mod s3;
mod settings;
pub mod sqs;

pub use clients::{AwsClients, config_loader};
pub use counter::RequestCounter;
pub use error::describe;
pub(crate) use error::{queue_error, store_error};
pub use settings::AwsSettings;
