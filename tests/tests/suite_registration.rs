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

fn check(file: &str) {
    let path = weft_tests::root().join("tests/src").join(file);
    let source = std::fs::read_to_string(&path).expect("suite source");
    let defined = defined(&source);
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
