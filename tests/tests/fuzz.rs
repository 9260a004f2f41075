//! Property-based fuzzing of what faces the outside: the HTTP router and
//! the module validator. Whatever arrives, the answer is a JSON error or a
//! success, never a panic or a 5xx, and a refused module stores nothing.
//!
//! `make test` runs a short pass (`PROPTEST_CASES`, default 64 here); run
//! longer by hand, e.g. `PROPTEST_CASES=20000 cargo test -p weft-tests --test fuzz`.
//! Failing inputs are kept in `tests/tests/fuzz.proptest-regressions` and
//! replayed first on every run.

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request};
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::sync::OnceLock;
use tower::ServiceExt;
use weft::api::{ApiConfig, router_with};
use weft::config::RpcMode;
use weft::service::ServiceError;
use weft_tests::{Service, bytes, example};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// One service for the whole file: cases share it like requests would.
fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let rt = runtime();
        let _guard = rt.enter();
        let s = Service::start(RpcMode::Inline, |_, _| {});
        rt.block_on(s.deploy("hello", &example("hello")));
        s
    })
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    Config {
        cases,
        ..Config::default()
    }
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v1".to_string()),
        Just("modules".to_string()),
        Just("workflows".to_string()),
        Just("runs".to_string()),
        Just("steps".to_string()),
        Just("logs".to_string()),
        Just("hello".to_string()),
        Just("healthz".to_string()),
        Just("console".to_string()),
        Just("app.js".to_string()),
        Just("01938a3c-0000-7000-8000-000000000000".to_string()),
        Just("..".to_string()),
        Just("%00".to_string()),
        Just("%ff%fe".to_string()),
        "[a-zA-Z0-9_.~-]{0,12}",
        "\\PC{0,6}".prop_map(|s| s.bytes().map(|b| format!("%{b:02x}")).collect()),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH),
        Just(Method::HEAD),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("?wait=0".to_string()),
        Just("?wait=NaN".to_string()),
        Just("?wait=1e309".to_string()),
        Just("?status=running&limit=99999999999999999999".to_string()),
        Just("?allowHosts=,,a:0,[::1]:80".to_string()),
        "\\?[a-z=&%0-9]{0,20}",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"{\"name\":\"Ada\"}".to_vec()),
        Just(b"null".to_vec()),
        Just(b"\0asm\x0d\0\x01\0".to_vec()),
        prop::collection::vec(any::<u8>(), 0..512),
        "\\PC{0,200}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_request_gets_a_json_answer_and_never_a_server_error(
        method in method(),
        segments in prop::collection::vec(segment(), 0..5),
        query in query(),
        body in body(),
    ) {
        let svc = service().svc.clone();
        let path = format!("/{}", segments.join("/"));
        let uri = format!("{path}{query}");
        // The console's three files are the only answers that are not JSON.
        let console_file = method == Method::GET
            && ["/", "/console/app.js", "/console/style.css"].contains(&path.as_str());
        let Ok(request) = Request::builder().method(method.clone()).uri(&uri).body(Body::from(body)) else {
            return Ok(()); // not a URI an HTTP client could send
        };
        let (status, text) = runtime().block_on(async move {
            let response = router_with(svc, ApiConfig::default()).oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        });
        prop_assert!(!status.is_server_error(), "{method} {uri} -> {status}: {text}");
        if method != Method::HEAD && !console_file {
            let parsed: Result<serde_json::Value, _> = serde_json::from_str(&text);
            prop_assert!(parsed.is_ok(), "{method} {uri} -> {status}: not JSON: {text:?}");
        }
    }

    #[test]
    fn random_bytes_are_refused_as_modules(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        let svc = service().svc.clone();
        let result = runtime().block_on(svc.deploy("fuzzed", data));
        prop_assert!(matches!(result, Err(ServiceError::Deploy(_))), "{result:?}");
    }

    #[test]
    fn mutated_components_never_crash_the_validator(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut module = bytes(&example("hello"));
        for (at, value) in flips {
            let i = at.index(module.len());
            module[i] = value;
        }
        let svc = service().svc.clone();
        let result = runtime().block_on(svc.deploy("mutated", module));
        // Some mutations keep the component valid (a changed string, say);
        // the rest must be refused as bad input, never as a host failure.
        prop_assert!(
            result.is_ok() || matches!(result, Err(ServiceError::Deploy(ref e)) if !matches!(e, weft::registry::DeployError::Store(_))),
            "{result:?}"
        );
    }
}
