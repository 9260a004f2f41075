//! The project templates, embedded in the binary so `weft new` needs no
//! network and no checkout. The versions they pin (SDKs, toolchains, WIT)
//! are read from the files this repository builds its own guests with, so
//! a generated project builds exactly as the repository's examples do.

use super::{Kind, Lang};
use anyhow::Context as _;

/// One file of a template: where it goes in the project and its text,
/// with `{{placeholders}}` still in it.
pub struct TemplateFile {
    pub path: &'static str,
    pub text: &'static str,
}

const fn file(path: &'static str, text: &'static str) -> TemplateFile {
    TemplateFile { path, text }
}

/// The WIT every project builds against, vendored into it.
pub const WIT: &str = include_str!("../../../../wit/weft.wit");
const README: &str = include_str!("templates/common/README.md.tmpl");

const SDK_CARGO: &str = include_str!("../../../../guest-sdk/Cargo.toml");
const SDK_PACKAGE_JSON: &str = include_str!("../../../../guest-sdk/js/package.json");
const SDK_PYPROJECT: &str = include_str!("../../../../guest-sdk/python/pyproject.toml");
const PYTHON_TOOLS: &str = include_str!("../../../../scripts/requirements.txt");

/// The language- and kind-specific files of a template (the WIT and the
/// README are added to every one).
pub fn files(lang: Lang, kind: Kind) -> Vec<TemplateFile> {
    use Kind::{Rpc, Workflow};
    match (lang, kind) {
        (Lang::Rust, Workflow) => vec![
            file(
                "Cargo.toml",
                include_str!("templates/rust/workflow/Cargo.toml.tmpl"),
            ),
            file(
                "src/lib.rs",
                include_str!("templates/rust/workflow/lib.rs.tmpl"),
            ),
            file(
                "tests/hello.rs",
                include_str!("templates/rust/workflow/test.rs.tmpl"),
            ),
            file(".gitignore", include_str!("templates/rust/gitignore")),
        ],
        (Lang::Rust, Rpc) => vec![
            file(
                "Cargo.toml",
                include_str!("templates/rust/rpc/Cargo.toml.tmpl"),
            ),
            file("src/lib.rs", include_str!("templates/rust/rpc/lib.rs.tmpl")),
            file(
                "tests/greet.rs",
                include_str!("templates/rust/rpc/test.rs.tmpl"),
            ),
            file(".gitignore", include_str!("templates/rust/gitignore")),
        ],
        (Lang::Js, Workflow) => vec![
            file(
                "package.json",
                include_str!("templates/js/workflow/package.json.tmpl"),
            ),
            file(
                "src/index.js",
                include_str!("templates/js/workflow/index.js"),
            ),
            file(
                "test/hello.test.js",
                include_str!("templates/js/workflow/hello.test.js"),
            ),
            file(".gitignore", include_str!("templates/js/gitignore")),
        ],
        (Lang::Js, Rpc) => vec![
            file(
                "package.json",
                include_str!("templates/js/rpc/package.json.tmpl"),
            ),
            file("src/index.js", include_str!("templates/js/rpc/index.js")),
            file(
                "test/greet.test.js",
                include_str!("templates/js/rpc/greet.test.js"),
            ),
            file(".gitignore", include_str!("templates/js/gitignore")),
        ],
        (Lang::Python, Workflow) => vec![
            file(
                "pyproject.toml",
                include_str!("templates/python/workflow/pyproject.toml.tmpl"),
            ),
            file("app.py", include_str!("templates/python/workflow/app.py")),
            file(
                "tests/test_app.py",
                include_str!("templates/python/workflow/test_app.py"),
            ),
            // A package, so `python -m unittest` discovers the test in it.
            file("tests/__init__.py", ""),
            file(".gitignore", include_str!("templates/python/gitignore")),
        ],
        (Lang::Python, Rpc) => vec![
            file(
                "pyproject.toml",
                include_str!("templates/python/rpc/pyproject.toml.tmpl"),
            ),
            file("app.py", include_str!("templates/python/rpc/app.py")),
            file(
                "tests/test_app.py",
                include_str!("templates/python/rpc/test_app.py"),
            ),
            // A package, so `python -m unittest` discovers the test in it.
            file("tests/__init__.py", ""),
            file(".gitignore", include_str!("templates/python/gitignore")),
        ],
    }
}

/// The README every template shares, filled in per language and kind.
pub fn readme(lang: Lang, kind: Kind) -> String {
    let (source, toolchain, test_line) = match lang {
        Lang::Rust => (
            "src/lib.rs",
            "cargo (wasm32-wasip2)",
            "cargo test                 # builds and runs it on the local host",
        ),
        Lang::Js => (
            "src/index.js",
            "esbuild and componentize-js",
            "npm test                   # builds and runs it on the local host",
        ),
        Lang::Python => (
            "app.py",
            "componentize-py (in .venv)",
            "python -m unittest         # builds and runs it on the local host",
        ),
    };
    let (kind_title, run_line, kind_hint) = match kind {
        Kind::Workflow => (
            "workflow",
            r#"weft build --run --input '{"name":"Ada"}'   # build, then run once locally"#,
            "Add `--replay-every-step` to `weft build --run` to check that the workflow\n\
             replays deterministically, and `--rpc NAME=module.wasm` to give it RPC\n\
             modules (`\"greeter\": \"NAME\"` in the input makes it call one).",
        ),
        Kind::Rpc => (
            "RPC module",
            r#"weft build --run --function greet --input '{"name":"Ada"}'   # call once"#,
            "Workflows call its functions as `<module>/greet`: give it to a local run\n\
             with `weft run workflow.wasm --rpc greeter=dist/<file>.wasm`.",
        ),
    };
    README
        .replace("{{kind_title}}", kind_title)
        .replace("{{lang_title}}", lang.title())
        .replace("{{source}}", source)
        .replace("{{toolchain}}", toolchain)
        .replace("{{run_line}}", run_line)
        .replace("{{test_line}}", test_line)
        .replace("{{kind_hint}}", kind_hint)
        .replace("{{kind}}", kind.world())
}

/// Fills a template's placeholders.
pub fn render(text: &str, name: &str) -> anyhow::Result<String> {
    let versions = Versions::embedded()?;
    let mut out = text
        .replace("{{name}}", name)
        .replace("{{sdk_version}}", &versions.rust_sdk)
        .replace("{{js_sdk_version}}", &versions.js_sdk)
        .replace("{{componentize_js_version}}", &versions.componentize_js)
        .replace("{{esbuild_version}}", &versions.esbuild)
        .replace("{{preview2_shim_version}}", &versions.preview2_shim)
        .replace("{{py_sdk_version}}", &versions.py_sdk)
        .replace("{{py_sdk_next}}", &versions.py_sdk_next)
        .replace("{{componentize_py_version}}", &versions.componentize_py)
        .replace("{{wit_version}}", &versions.wit);
    if let Some(at) = out.find("{{") {
        let end = out[at..].find("}}").map_or(out.len(), |e| at + e + 2);
        anyhow::bail!("template placeholder {} has no value", &out[at..end]);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// The versions a generated project pins.
struct Versions {
    rust_sdk: String,
    js_sdk: String,
    componentize_js: String,
    esbuild: String,
    /// componentize-js imports `@bytecodealliance/preview2-shim` without
    /// declaring it; without a pin, whether npm hoists a version where it
    /// can find it depends on the rest of the tree.
    preview2_shim: String,
    py_sdk: String,
    /// The first version a `py_sdk`-compatible range excludes (`0.2` for
    /// `0.1.x`).
    py_sdk_next: String,
    componentize_py: String,
    wit: String,
}

impl Versions {
    fn embedded() -> anyhow::Result<Versions> {
        let cargo: toml::Table = toml::from_str(SDK_CARGO).context("the Rust SDK's Cargo.toml")?;
        let rust_sdk = version_in(&cargo, "package").context("the Rust SDK has no version")?;
        let npm: serde_json::Value =
            serde_json::from_str(SDK_PACKAGE_JSON).context("the JavaScript SDK's package.json")?;
        let npm_field = |pointer: &str| {
            npm.pointer(pointer)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .with_context(|| format!("the JavaScript SDK's package.json has no {pointer}"))
        };
        let pyproject: toml::Table =
            toml::from_str(SDK_PYPROJECT).context("the Python SDK's pyproject.toml")?;
        let py_sdk = version_in(&pyproject, "project").context("the Python SDK has no version")?;
        let componentize_py = PYTHON_TOOLS
            .lines()
            .find_map(|l| l.trim().strip_prefix("componentize-py=="))
            .context("scripts/requirements.txt pins no componentize-py")?
            .to_string();
        let wit = WIT
            .lines()
            .find_map(|l| l.trim().strip_prefix("package weft:workflow@"))
            .and_then(|v| v.strip_suffix(';'))
            .context("wit/weft.wit names no package version")?
            .to_string();
        Ok(Versions {
            rust_sdk,
            js_sdk: npm_field("/version")?,
            componentize_js: npm_field("/devDependencies/@bytecodealliance~1componentize-js")?,
            esbuild: npm_field("/devDependencies/esbuild")?,
            preview2_shim: npm_field("/devDependencies/@bytecodealliance~1preview2-shim")?,
            py_sdk_next: next_minor(&py_sdk)?,
            py_sdk,
            componentize_py,
            wit,
        })
    }
}

/// `[section] version = "..."` of a TOML manifest.
fn version_in(manifest: &toml::Table, section: &str) -> Option<String> {
    manifest
        .get(section)?
        .get("version")?
        .as_str()
        .map(str::to_string)
}

/// `0.1.3` → `0.2`; `1.4.0` → `2.0` (the semver-compatible bound).
fn next_minor(version: &str) -> anyhow::Result<String> {
    let mut parts = version.split('.').map(str::parse::<u64>);
    let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) else {
        anyhow::bail!("{version:?} is not a major.minor.patch version");
    };
    Ok(if major == 0 {
        format!("0.{}", minor + 1)
    } else {
        format!("{}.0", major + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_without_a_leftover_placeholder() {
        for lang in [Lang::Rust, Lang::Js, Lang::Python] {
            for kind in [Kind::Workflow, Kind::Rpc] {
                for f in files(lang, kind) {
                    render(f.text, "demo").unwrap_or_else(|e| panic!("{}: {e}", f.path));
                }
                render(&readme(lang, kind), "demo").unwrap();
            }
        }
    }

    #[test]
    fn compatible_ranges_end_at_the_next_breaking_version() {
        assert_eq!(next_minor("0.1.0").unwrap(), "0.2");
        assert_eq!(next_minor("1.4.2").unwrap(), "2.0");
        assert!(next_minor("x").is_err());
    }
}
