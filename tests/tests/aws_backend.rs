//! The conformance and scenario suites on the AWS backend (DynamoDB, SQS,
//! S3), against the moto emulator over HTTP.

fn provision()
-> std::pin::Pin<Box<dyn std::future::Future<Output = weft_tests::conformance::Backend> + Send>> {
    Box::pin(weft_tests::aws::test_backend())
}

mod conformance {
    use super::provision;
    weft_tests::conformance_suite!(provision);
}

mod scenarios {
    use super::provision;
    weft_tests::scenario_suite!(provision);
}

/// A precompiled artifact written by one host is loaded by another whose
/// `/tmp` is empty (a Lambda cold start) from the shared copy in S3, and
/// only if its bytes still hash to the digest recorded with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precompiled_artifacts_are_shared_through_the_bucket() {
    use weft::config::Limits;
    use weft::engine::WeftEngine;
    use weft::model::Digest;
    use weft::registry::loader::ComponentLoader;

    let backend = weft_tests::aws::test_backend().await;
    let engine = WeftEngine::new(Limits::default()).unwrap();
    let loader = |dir: &std::path::Path| {
        ComponentLoader::new(
            engine.engine.clone(),
            engine.engine_hash.clone(),
            backend.modules.clone(),
            dir.to_path_buf(),
        )
    };
    let wasm = weft_tests::bytes(&weft_tests::example("hello"));
    let digest = Digest::of(&wasm);
    backend.modules.put_blob(&digest, &wasm).await.unwrap();

    let first = tempfile::tempdir().unwrap();
    let compiled = loader(first.path())
        .compile_fresh(&digest, wasm.clone())
        .await
        .unwrap();
    loader(first.path())
        .store_artifact(&digest, &compiled)
        .await
        .unwrap();

    let fresh = tempfile::tempdir().unwrap();
    assert!(
        loader(fresh.path())
            .load_artifact(&digest)
            .await
            .unwrap()
            .is_some(),
        "a host with an empty cache directory loads the shared artifact"
    );
    assert_eq!(
        std::fs::read_dir(fresh.path()).unwrap().count(),
        1,
        "and keeps a copy on its own disk"
    );

    // Tampered shared bytes are refused (the loader falls back to compiling).
    let shared = backend
        .modules
        .get_shared_artifact(&digest, &engine.engine_hash)
        .await
        .unwrap()
        .expect("the artifact is in the bucket");
    let mut tampered = shared.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 0xff;
    }
    backend
        .modules
        .put_shared_artifact(&digest, &engine.engine_hash, &tampered)
        .await
        .unwrap();
    let other = tempfile::tempdir().unwrap();
    assert!(
        loader(other.path())
            .load_artifact(&digest)
            .await
            .unwrap()
            .is_none()
    );
}
