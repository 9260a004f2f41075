//! Every seed and every input the fuzzer ever found (`regressions/`),
//! through the same target code libFuzzer drives. Part of `make test`, so
//! a fixed finding stays fixed; `make fuzz` runs the fuzzer itself.

use std::path::{Path, PathBuf};
use weft_fuzz::TARGETS;

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = inputs(&root.join("seeds").join(target));
    assert!(!seeds.is_empty(), "{target} has no seeds");
    for path in seeds
        .iter()
        .chain(&inputs(&root.join("regressions").join(target)))
    {
        let data = std::fs::read(path).expect("reading an input");
        eprintln!("{target}: {}", path.display());
        run(&data);
    }
}

#[test]
fn router() {
    replay("router");
}

#[test]
fn module_upload() {
    replay("module_upload");
    // The real components the fuzzer starts from (too large to keep as
    // seeds in the repository), uploaded as they are.
    for name in ["hello-c", "expense-approval"] {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/examples/{name}.wasm"));
        let mut data = vec![0];
        data.extend(std::fs::read(&path).expect("a component built by `make guests`"));
        weft_fuzz::module_upload::run(&data);
    }
}

#[test]
fn lambda_event() {
    replay("lambda_event");
}

#[test]
fn payloads() {
    replay("payloads");
}

#[test]
fn guest_values() {
    replay("guest_values");
}

#[test]
fn every_target_is_replayed() {
    let here = include_str!("corpus.rs");
    for (name, _) in TARGETS {
        assert!(
            here.contains(&format!("fn {name}()")),
            "{name} has no replay test"
        );
    }
}

/// Seconds of blind mutation per target in `make test`.
fn blind_seconds() -> u64 {
    std::env::var("FUZZ_BLIND_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
}

/// A short fuzz run that needs no instrumented build: every target gets a
/// few seconds of random mutations (flips, inserts, deletes, splices) of
/// its seeds and regressions. Blind, unlike `make fuzz`, so it finds less;
/// it is what `make test` can afford. A failing input is written to
/// `target/fuzz/artifacts/<target>/` with the seed that made it.
#[test]
fn a_short_blind_run_over_every_target() {
    use rand::{RngExt, SeedableRng};
    let seed: u64 = rand::rng().random();
    eprintln!(
        "blind run seed {seed} (FUZZ_BLIND_SECS={})",
        blind_seconds()
    );
    let mut rng = rand::rngs::ChaCha20Rng::seed_from_u64(seed);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (target, run) in TARGETS {
        let pool: Vec<Vec<u8>> = inputs(&root.join("seeds").join(target))
            .iter()
            .chain(&inputs(&root.join("regressions").join(target)))
            .map(|p| std::fs::read(p).expect("reading an input"))
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(blind_seconds());
        let mut executions = 0u64;
        while std::time::Instant::now() < deadline {
            let mut data = pool[rng.random_range(0..pool.len())].clone();
            for _ in 0..rng.random_range(1..=4) {
                mutate(&mut rng, &mut data, &pool);
            }
            let outcome = std::panic::catch_unwind(|| run(&data));
            if let Err(panic) = outcome {
                let dir = root.join("../target/fuzz/artifacts").join(target);
                let _ = std::fs::create_dir_all(&dir);
                let path = dir.join(format!("blind-{seed}-{executions}"));
                let _ = std::fs::write(&path, &data);
                eprintln!("{target} failed on the input saved as {}", path.display());
                std::panic::resume_unwind(panic);
            }
            executions += 1;
        }
        eprintln!("{target}: {executions} blind executions");
    }
}

/// One random change to `data`, sometimes taking bytes from another input.
fn mutate(rng: &mut impl rand::RngExt, data: &mut Vec<u8>, pool: &[Vec<u8>]) {
    match rng.random_range(0..5) {
        0 if !data.is_empty() => {
            let i = rng.random_range(0..data.len());
            data[i] = rng.random();
        }
        1 => {
            const TOKENS: &[u8] = b"\"{}[]\n%?&=\0\xff";
            let i = rng.random_range(0..=data.len());
            data.insert(i, TOKENS[rng.random_range(0..TOKENS.len())]);
        }
        2 if data.len() > 1 => {
            let start = rng.random_range(0..data.len());
            let end = (start + rng.random_range(1..=16)).min(data.len());
            data.drain(start..end);
        }
        3 => {
            let other = &pool[rng.random_range(0..pool.len())];
            if !other.is_empty() {
                let from = rng.random_range(0..other.len());
                let to = (from + rng.random_range(1..=64)).min(other.len());
                let i = rng.random_range(0..=data.len());
                data.splice(i..i, other[from..to].iter().copied());
            }
        }
        _ => {
            let i = rng.random_range(0..=data.len());
            let n = rng.random_range(1..=8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            data.splice(i..i, bytes);
        }
    }
}
