//! Instance slots (wasmtime's pooling allocator, `host/src/engine/pool.rs`)
//! under pressure: a `weft dev` with room for three instances at once runs
//! a burst of sagas, each needing a workflow instance and an RPC instance,
//! and the JavaScript and Python components, the largest Weft runs. Every
//! run must finish as it would with room to spare: an instantiation that
//! finds every slot taken waits for one instead of failing the run.

use serde_json::{Value, json};
use std::time::Duration;
use weft_tests::{DevServer, example, saga_input};

const T: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_wait_for_an_instance_slot_rather_than_fail() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(dir.path(), &[("WEFT_INSTANCE_SLOTS", "3")]).unwrap();
    let api = server.api();
    for (name, file) in [
        ("order-saga", "order-saga"),
        ("order-rpc", "order-rpc"),
        ("hello-js", "hello-js"),
        ("hello-py", "hello-py"),
        ("order-saga-py", "order-saga-py"),
    ] {
        api.deploy(name, &example(file)).await.unwrap();
    }

    let mut runs = Vec::new();
    for i in 0..12 {
        let mut input = saga_input(&format!("o-slot-{i}"));
        input["coolOffMs"] = json!(20);
        input["paymentFailures"] = json!(0);
        runs.push((api.start("order-saga", &input).await.unwrap(), "order-saga"));
    }
    runs.push((
        api.start("order-saga-py", &saga_input("o-slot-py"))
            .await
            .unwrap(),
        "order-saga-py",
    ));
    for name in ["hello-js", "hello-py"] {
        let id = api.start(name, &json!({"name": "slots"})).await.unwrap();
        runs.push((id, name));
    }

    for (id, workflow) in &runs {
        let run: Value = api.wait(id, T).await.unwrap();
        assert_eq!(run["status"], "completed", "{workflow}: {run}");
        match *workflow {
            "hello-js" | "hello-py" => assert_eq!(run["output"]["greeting"], "Hello, slots!"),
            _ => assert_eq!(run["output"]["status"], "completed", "{run}"),
        }
    }
}
