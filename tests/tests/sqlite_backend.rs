//! The conformance and scenario suites on the embedded SQLite backend.

fn provision()
-> std::pin::Pin<Box<dyn std::future::Future<Output = weft_tests::conformance::Backend> + Send>> {
    Box::pin(weft_tests::sqlite_backend())
}

mod conformance {
    use super::provision;
    weft_tests::conformance_suite!(provision);
}

mod scenarios {
    use super::provision;
    weft_tests::scenario_suite!(provision);
}
