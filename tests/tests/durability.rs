//! Acknowledged means durable: a write the embedded backend answered "done"
//! is on disk, not just in the kernel's cache. The crash-restart suite kills
//! real processes, which keeps the page cache; here the power goes out
//! instead ([`weft_tests::power_cut`]), while writers commit concurrently.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use weft::backend::StateStore;
use weft::backend::sqlite::{EmbeddedOptions, SqliteBackend};
use weft::model::RunId;
use weft_tests::conformance::run_record;
use weft_tests::power_cut;

/// Writers committing at once: enough for group commits of several writes.
const WRITERS: usize = 8;
/// Power cuts taken during one stream of writes.
const CUTS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_a_power_cut() -> anyhow::Result<()> {
    power_cut::install();
    let live = tempfile::tempdir()?;
    let live_dir = live.path().canonicalize()?;
    let backend = Arc::new(SqliteBackend::open(&live_dir, EmbeddedOptions::default())?);
    let acknowledged = Arc::new(Mutex::new(Vec::<RunId>::new()));

    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let (backend, acknowledged) = (Arc::clone(&backend), Arc::clone(&acknowledged));
        writers.spawn(async move {
            loop {
                let run = run_record("durable");
                if backend.create_run(&run).await.is_ok() {
                    acknowledged.lock().expect("ack list").push(run.id);
                }
            }
        });
    }
    // Several cuts at different moments, each checked on its own: a batch
    // answered early is lost only if a cut falls inside its sync.
    let mut cuts = Vec::new();
    for _ in 0..CUTS {
        tokio::time::sleep(Duration::from_millis(60)).await;
        // Acknowledgements first, then the cut: every write counted here
        // was answered before the power went, so its sync came before too.
        let answered = acknowledged.lock().expect("ack list").len();
        cuts.push((answered, power_cut::cut()));
    }
    writers.abort_all();
    while writers.join_next().await.is_some() {}
    let acknowledged = acknowledged.lock().expect("ack list").clone();

    for (n, (answered, disk)) in cuts.iter().enumerate() {
        assert!(
            *answered >= WRITERS,
            "too few writes before cut {n} ({answered}) for the test to mean anything"
        );
        let after = tempfile::tempdir()?;
        power_cut::restore(disk, &live_dir, after.path())?;
        let reopened = SqliteBackend::open(after.path(), EmbeddedOptions::default())?;
        let mut lost = Vec::new();
        for id in &acknowledged[..*answered] {
            if reopened.get_run(id).await?.is_none() {
                lost.push(id.to_string());
            }
        }
        assert!(
            lost.is_empty(),
            "cut {n}: {} of {answered} acknowledged writes did not survive, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(3)]
        );
    }
    eprintln!(
        "{} acknowledged writes over {CUTS} cuts, all on disk after each",
        cuts.last().map_or(0, |c| c.0)
    );
    Ok(())
}

/// A module's bytes are written to a temporary file, fsynced, renamed into
/// place, and then the directory is fsynced: without the last step a power
/// cut can keep the rename's old directory entry while the version row that
/// names the file (fsynced by SQLite) survives. A page cache hides the
/// difference from any read, so this watches the system calls of a real
/// `weft run` (which uploads its module into a scratch data directory)
/// under `strace`, and requires, after every rename, an fsync of a
/// descriptor opened on the directory the file was renamed into.
#[test]
fn a_renamed_file_is_made_durable_by_syncing_its_directory() -> anyhow::Result<()> {
    let trace = tempfile::tempdir()?;
    let log = trace.path().join("strace.log");
    let status = std::process::Command::new("strace")
        // One log per thread (`-ff`): no call is split by another's.
        .args([
            "-ff",
            "-qq",
            "-e",
            "trace=rename,renameat,renameat2,openat,fsync,close",
            "-o",
        ])
        .arg(&log)
        .arg(weft_tests::weft_bin())
        .arg("run")
        .arg(weft_tests::example("hello"))
        .args(["--input", r#"{"name":"durable"}"#])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run strace (make test installs it): {e}"))?;
    assert!(status.success(), "weft run under strace failed: {status}");
    let mut renames = 0;
    for entry in std::fs::read_dir(trace.path())? {
        let calls = std::fs::read_to_string(entry?.path())?;
        for (line, dir) in renamed_into(&calls) {
            renames += 1;
            assert!(
                dir_synced_after(&calls, line, &dir),
                "nothing fsynced {dir} after the rename on line {line} of this thread's calls:\n{calls}"
            );
        }
    }
    assert!(
        renames > 0,
        "the trace shows no rename at all: is the module still written atomically?"
    );
    Ok(())
}

/// `(line, directory)` of every successful rename in an strace log.
fn renamed_into(calls: &str) -> Vec<(usize, String)> {
    calls
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("rename") && l.trim_end().ends_with("= 0"))
        .filter_map(|(i, l)| {
            let target = quoted(l).nth(1)?;
            let dir = std::path::Path::new(&target).parent()?;
            Some((i, dir.to_string_lossy().into_owned()))
        })
        .collect()
}

/// Whether, after line `from`, a descriptor is opened on `dir` and fsynced
/// before it is closed.
fn dir_synced_after(calls: &str, from: usize, dir: &str) -> bool {
    let mut open_fds = Vec::new();
    for line in calls.lines().skip(from + 1) {
        let result = line.rsplit("= ").next().unwrap_or_default().trim();
        if line.contains("openat(") && quoted(line).next().as_deref() == Some(dir) {
            open_fds.push(result.to_string());
        } else if let Some(fd) = call_arg(line, "fsync(") {
            if open_fds.contains(&fd) && result == "0" {
                return true;
            }
        } else if let Some(fd) = call_arg(line, "close(") {
            open_fds.retain(|f| *f != fd);
        }
    }
    false
}

/// The double-quoted strings of an strace line, in order.
fn quoted(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split('"').skip(1).step_by(2).map(str::to_string)
}

/// The first argument of `call` on this line, if the line is that call.
fn call_arg(line: &str, call: &str) -> Option<String> {
    let start = line.find(call)? + call.len();
    let rest = &line[start..];
    Some(rest[..rest.find(')')?].to_string())
}
