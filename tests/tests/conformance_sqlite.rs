//! The backend conformance suite on the embedded SQLite backend.

use std::sync::Arc;
use std::time::Duration;
use weft::store::sqlite::{QueueSettings, SqliteBackend};
use weft_tests::conformance::Backend;

fn provision() -> std::pin::Pin<Box<dyn std::future::Future<Output = Backend> + Send>> {
    Box::pin(async {
        // The directory outlives the test on purpose: the backend keeps files open.
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let settings = QueueSettings {
            visibility_timeout: Duration::from_secs(1),
            max_receives: 3,
        };
        let db = Arc::new(SqliteBackend::open(&dir, settings).expect("open sqlite backend"));
        Backend {
            state: db.clone(),
            queue: db.clone(),
            modules: db,
            visibility: Duration::from_secs(1),
            max_receives: 3,
        }
    })
}

weft_tests::conformance_suite!(provision);
