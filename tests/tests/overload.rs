//! Overload on `weft dev`: a burst of starts larger than the queue's
//! backlog limit is answered at once, with `429 overloaded` and a
//! `Retry-After`, never a timeout; clients that come back after the
//! advised delay get in; every admitted run completes, none is dropped;
//! and the queue hands runs to the worker in the order they arrived.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weft_tests::{DevServer, test_guest};

const RUNS: usize = 60;
const MAX_BACKLOG: u64 = 5;

/// One start: its status, `Retry-After` (seconds) and body.
async fn start(http: &reqwest::Client, url: &str, i: usize) -> (u16, Option<u64>, Value) {
    let response = http
        .post(format!("{url}/v1/workflows/counter/runs"))
        .header("content-type", "application/json")
        .header("idempotency-key", format!("burst-{i}"))
        .body(json!({ "n": 20 }).to_string())
        .send()
        .await
        .expect("an answer, not a timeout");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    (status, retry_after, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_backlog_gets_429_with_retry_after_and_loses_no_run() {
    let dir = tempfile::tempdir().unwrap();
    let backlog = MAX_BACKLOG.to_string();
    let server = DevServer::start(
        dir.path(),
        &[
            ("WEFT_MAX_BACKLOG", backlog.as_str()),
            ("WEFT_WORKER_CONCURRENCY", "1"),
            ("WEFT_LOCAL_STARTS", "1"),
        ],
    )
    .unwrap();
    let api = server.api();
    api.deploy("counter", &test_guest("counter")).await.unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // The burst: every start at once.
    let burst: Vec<_> = (0..RUNS)
        .map(|i| {
            let (http, url) = (http.clone(), server.url.clone());
            tokio::spawn(async move { (i, start(&http, &url, i).await) })
        })
        .collect();
    let mut admitted: Vec<(usize, String)> = Vec::new();
    let mut refused: Vec<(usize, u64)> = Vec::new();
    for task in burst {
        let (i, (status, retry_after, body)) = task.await.unwrap();
        match status {
            202 => admitted.push((i, body["runId"].as_str().unwrap().to_string())),
            429 => {
                assert_eq!(body["error"]["code"], "overloaded", "{body}");
                let secs = retry_after.expect("a 429 carries Retry-After");
                assert!((1..=30).contains(&secs), "Retry-After: {secs}");
                refused.push((i, secs));
            }
            other => panic!("start {i}: {other} {body}"),
        }
    }
    let refused_in_burst = refused.len();
    assert!(
        refused_in_burst > 0 && !admitted.is_empty(),
        "{} admitted, {refused_in_burst} refused",
        admitted.len()
    );
    // The refused come back after the advised delay, each on its own,
    // until they get in.
    let retries: Vec<_> = refused
        .iter()
        .map(|&(i, secs)| {
            let (http, url) = (http.clone(), server.url.clone());
            tokio::spawn(async move {
                let (mut secs, mut refusals) = (secs, 0);
                let deadline = Instant::now() + Duration::from_secs(300);
                loop {
                    assert!(Instant::now() < deadline, "start {i} never got in");
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                    let (status, retry_after, body) = start(&http, &url, i).await;
                    match status {
                        202 => {
                            let id = body["runId"].as_str().unwrap().to_string();
                            return (i, id, refusals);
                        }
                        429 => {
                            refusals += 1;
                            secs = retry_after.expect("Retry-After");
                        }
                        other => panic!("start {i} again: {other} {body}"),
                    }
                }
            })
        })
        .collect();
    let mut refusals = refused_in_burst;
    let mut late = Vec::new();
    for task in retries {
        let (i, id, more) = task.await.unwrap();
        refusals += more;
        late.push(id.clone());
        admitted.push((i, id));
    }
    assert_eq!(admitted.len(), RUNS);

    // None dropped: every run completes with its result.
    let mut runs = Vec::new();
    for (_, id) in &admitted {
        let run = api.wait(id, Duration::from_secs(120)).await.unwrap();
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(run["output"], json!({ "x": 20 }), "{run}");
        runs.push(run);
    }
    // The worker took them in arrival order (one run at a time, each done
    // in one activation): of the runs admitted after the burst, none
    // created 50 ms or more after another finished before it. (Runs
    // created closer together arrived concurrently: no order to keep.)
    let millis = |r: &Value, field: &str| {
        let text = r[field].as_str().unwrap();
        humantime::parse_rfc3339(text)
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    };
    let late: Vec<(u128, u128)> = runs
        .iter()
        .filter(|r| late.iter().any(|id| r["runId"] == id.as_str()))
        .map(|r| (millis(r, "createdAt"), millis(r, "updatedAt")))
        .collect();
    for a in &late {
        for b in &late {
            assert!(
                !(b.0 >= a.0 + 50 && b.1 < a.1),
                "a run created at {} finished at {}, before one created at {} (finished at {})",
                b.0,
                b.1,
                a.0,
                a.1
            );
        }
    }

    // The metric counts every refusal.
    let metrics = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("weft_starts_refused_total "))
        .expect("weft_starts_refused_total")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(counted, refusals);
    println!(
        "{RUNS} starts at once with WEFT_MAX_BACKLOG={MAX_BACKLOG}: {refused_in_burst} refused at first, {refusals} refusals in all, every run completed in order"
    );
}
