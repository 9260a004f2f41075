//! Every case of the shared suites is stamped out for every backend.
//!
//! The suites' macros list their cases by name; a `pub async fn case(b:
//! Backend)` added to a suite but not to its macro would compile and never
//! run. This reads both suites' sources and fails on any difference.

use std::collections::BTreeSet;

/// The cases a suite defines: `pub async fn <name>(b: Backend)`.
fn defined(source: &str) -> BTreeSet<String> {
    source
        .lines()
        .filter_map(|l| l.strip_prefix("pub async fn "))
        .filter(|rest| rest.contains("(b: Backend)"))
        .filter_map(|rest| rest.split('(').next())
        .map(str::to_string)
        .collect()
}

/// The cases the suite's macro lists, between `@cases $provision:expr;`
/// and the closing `);`.
fn registered(source: &str) -> BTreeSet<String> {
    let start = source
        .find("@cases $provision;")
        .expect("the suite macro lists its cases after `@cases $provision;`");
    let list = &source[start + "@cases $provision;".len()..];
    let end = list.find(");").expect("the case list ends with `);`");
    list[..end]
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

/// The suite file's source and its submodules' (`<suite>/*.rs`), where
/// cases may be defined too.
fn sources(file: &str) -> (String, String) {
    let src = weft_tests::root().join("tests/src");
    let main = std::fs::read_to_string(src.join(file)).expect("suite source");
    let mut all = main.clone();
    let dir = src.join(file.trim_end_matches(".rs"));
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<_> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        for path in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        {
            all.push_str(&std::fs::read_to_string(path).expect("suite submodule"));
        }
    }
    (main, all)
}

fn check(file: &str) {
    let (source, all) = sources(file);
    let defined = defined(&all);
    let registered = registered(&source);
    assert!(!defined.is_empty(), "{file}: no cases found");
    let unregistered: Vec<_> = defined.difference(&registered).collect();
    let unknown: Vec<_> = registered.difference(&defined).collect();
    assert!(
        unregistered.is_empty() && unknown.is_empty(),
        "{file}: cases not in the suite macro: {unregistered:?}; listed but not defined: {unknown:?}"
    );
}

#[test]
fn every_conformance_case_runs_on_every_backend() {
    check("conformance.rs");
}

#[test]
fn every_scenario_runs_on_every_backend() {
    check("scenarios.rs");
}
