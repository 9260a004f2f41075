//! The soak: many runs through one `weft dev` on the embedded backend, with
//! retention on, watching what must stay flat.
//!
//! `SOAK_RUNS` (default 100,000) runs of the `counter` workflow (three
//! inline steps) are started over HTTP with `?wait=`, `SOAK_CONCURRENCY`
//! (16) at a time. Every `SOAK_WINDOW` (2,000) runs it samples the server
//! process's resident memory and open file descriptors (from `/proc`), the
//! data directory's size, and the window's latency (median, p99) and
//! throughput. Finished runs expire after `SOAK_RETENTION_SECS` (20) and
//! the retention sweep (every 5 s) deletes them, so the stored data should
//! stop growing once the first expire: the steady state.
//!
//! Writes `target/soak/samples.jsonl`, prints a table and a verdict
//! (memory, descriptors and data at the end within 20 % of their level
//! when the steady state began, the first sample past the retention
//! window plus two sweeps; the last window's median latency within 20 %
//! of the first's), and `bench/soak-plot` draws `target/soak/soak.png`.
//! Not part of `make test`: `make soak`.

use serde_json::json;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use weft_tests::{DevServer, root, test_guest};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes under `dir`, every file counted.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Resident memory (KiB) and open descriptors of process `pid`.
fn process_figures(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

#[derive(Debug)]
struct Sample {
    runs: usize,
    seconds: f64,
    rss_kib: u64,
    fds: usize,
    data_bytes: u64,
    median_ms: f64,
    p99_ms: f64,
    runs_per_sec: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total = env_usize("SOAK_RUNS", 100_000);
    let concurrency = env_usize("SOAK_CONCURRENCY", 16);
    let window = env_usize("SOAK_WINDOW", 2_000).max(concurrency);
    let retention_secs = env_usize("SOAK_RETENTION_SECS", 20);
    let retention = retention_secs.to_string();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("weft.log");
    let env: Vec<(String, String)> = [
        ("WEFT_RETENTION_SECS", retention.as_str()),
        ("WEFT_SWEEP_INTERVAL_SECS", "5"),
        ("WEFT_LOG", "warn"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let db = data.path().join("db");
    let server = DevServer::start_logged(&db, &env, &log).expect("weft dev");
    let pid = server.pid();
    let api = server.api();
    api.deploy("counter", &test_guest("counter")).await.unwrap();

    let out = root().join("target/soak");
    std::fs::create_dir_all(&out).unwrap();
    let mut jsonl = std::fs::File::create(out.join("samples.jsonl")).unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/v1/workflows/counter/runs?wait=30", server.url);
    let body = json!({ "n": 3 }).to_string();
    let started = Arc::new(AtomicUsize::new(0));
    let begin = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    eprintln!("soak: {total} runs, {concurrency} at a time, a sample every {window}");
    while started.load(Ordering::Relaxed) < total {
        let window_start = Instant::now();
        let goal = (started.load(Ordering::Relaxed) + window).min(total);
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (http, url, body, started) =
                    (http.clone(), url.clone(), body.clone(), started.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while started.fetch_add(1, Ordering::Relaxed) < goal {
                        let t = Instant::now();
                        let response = http
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await
                            .expect("an answer");
                        let status = response.status().as_u16();
                        let reply: serde_json::Value = response.json().await.unwrap();
                        assert_eq!(status, 200, "{reply}");
                        assert_eq!(reply["status"], "completed", "{reply}");
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.unwrap());
        }
        // The counter overshot by one per task; settle it on the goal.
        started.store(goal, Ordering::Relaxed);
        latencies.sort_by(|a, b| a.total_cmp(b));
        let (rss_kib, fds) = process_figures(pid);
        let sample = Sample {
            runs: goal,
            seconds: begin.elapsed().as_secs_f64(),
            rss_kib,
            fds,
            data_bytes: dir_bytes(&db),
            median_ms: percentile(&latencies, 0.5),
            p99_ms: percentile(&latencies, 0.99),
            runs_per_sec: latencies.len() as f64 / window_start.elapsed().as_secs_f64(),
        };
        let line = json!({
            "runs": sample.runs,
            "seconds": sample.seconds,
            "rssMiB": sample.rss_kib as f64 / 1024.0,
            "fds": sample.fds,
            "dataMiB": sample.data_bytes as f64 / (1 << 20) as f64,
            "medianMs": sample.median_ms,
            "p99Ms": sample.p99_ms,
            "runsPerSec": sample.runs_per_sec,
        });
        writeln!(jsonl, "{line}").unwrap();
        eprintln!(
            "{:>7} runs {:>7.0} s  rss {:>6.1} MiB  fds {:>4}  data {:>7.1} MiB  median {:>6.2} ms  p99 {:>7.2} ms  {:>6.0} runs/s",
            sample.runs,
            sample.seconds,
            sample.rss_kib as f64 / 1024.0,
            sample.fds,
            sample.data_bytes as f64 / (1 << 20) as f64,
            sample.median_ms,
            sample.p99_ms,
            sample.runs_per_sec
        );
        samples.push(sample);
    }
    drop(server);

    // The verdict: the end against the start of the steady state (once the
    // first runs expired and two sweeps deleted them), and the last
    // window's latency against the first's.
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return;
    };
    let steady_from = (retention_secs + 10) as f64;
    let Some(early) = samples.iter().find(|s| s.seconds >= steady_from) else {
        println!("soak: too short to reach the steady state ({steady_from} s)");
        return;
    };
    println!(
        "steady state from {} runs ({:.0} s): the retention window plus two sweeps",
        early.runs, early.seconds
    );
    let within = |end: f64, start: f64| end <= start * 1.2;
    let checks = [
        (
            "resident memory",
            format!(
                "{:.1} MiB → {:.1} MiB",
                early.rss_kib as f64 / 1024.0,
                last.rss_kib as f64 / 1024.0
            ),
            within(last.rss_kib as f64, early.rss_kib as f64),
        ),
        (
            "open descriptors",
            format!("{} → {}", early.fds, last.fds),
            within(last.fds as f64, early.fds as f64),
        ),
        (
            "data directory",
            format!(
                "{:.1} MiB → {:.1} MiB",
                early.data_bytes as f64 / (1 << 20) as f64,
                last.data_bytes as f64 / (1 << 20) as f64
            ),
            within(last.data_bytes as f64, early.data_bytes as f64),
        ),
        (
            "median latency",
            format!("{:.2} ms → {:.2} ms", first.median_ms, last.median_ms),
            within(last.median_ms, first.median_ms),
        ),
    ];
    println!(
        "soak: {} runs in {:.0} s ({:.0} runs/s)",
        last.runs,
        last.seconds,
        last.runs as f64 / last.seconds
    );
    for (what, figures, ok) in checks {
        println!(
            "  {what:<17} {figures:<28} {}",
            if ok {
                "flat (within 20 %)"
            } else {
                "GREW past 20 %"
            }
        );
    }
}
