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
