//! Reads a project folder: which language, what it is called, what kind of
//! component it builds and from which entry point. Everything comes from
//! the language's own manifest, so a project needs no Weft-specific file.

use super::{Kind, Lang, check_name};
use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};

/// A project folder, as its manifest describes it.
#[derive(Debug)]
pub struct Project {
    pub dir: PathBuf,
    pub lang: Lang,
    /// The package name: the component's file name and the module name
    /// `weft deploy` uploads it under by default.
    pub name: String,
    pub kind: Kind,
    /// JavaScript: the entry module (`main`). Python: the module defining
    /// `WitWorld`. Rust: unused (cargo knows its crate).
    pub entry: String,
}

impl Project {
    /// Reads the project in `dir`.
    pub fn read(dir: &Path) -> anyhow::Result<Project> {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("no project folder at {}", dir.display()))?;
        let (project, manifest) = if dir.join("Cargo.toml").is_file() {
            (Self::rust(dir)?, "Cargo.toml")
        } else if dir.join("package.json").is_file() {
            (Self::js(dir)?, "package.json")
        } else if dir.join("pyproject.toml").is_file() {
            (Self::python(dir)?, "pyproject.toml")
        } else {
            bail!(
                "{} is not a Weft project: it has no Cargo.toml, package.json or pyproject.toml \
                 (start one with `weft new <name> --lang rust|js|python`)",
                dir.display()
            )
        };
        // The name becomes the module name: check it before a build, not
        // after one.
        check_name(&project.name).with_context(|| format!("the name in {manifest}"))?;
        Ok(project)
    }

    fn rust(dir: PathBuf) -> anyhow::Result<Project> {
        let manifest = read_toml(&dir.join("Cargo.toml"))?;
        let package = manifest
            .get("package")
            .context("Cargo.toml has no [package]: a workspace root is not a project")?;
        let name = package
            .get("name")
            .and_then(|n| n.as_str())
            .context("Cargo.toml has no package name")?
            .to_string();
        let kind = package
            .get("metadata")
            .and_then(|m| m.get("weft"))
            .and_then(|w| w.get("kind"))
            .and_then(|k| k.as_str());
        let kind = parse_kind(kind, "[package.metadata.weft] kind in Cargo.toml")?;
        Ok(Project {
            dir,
            lang: Lang::Rust,
            name,
            kind,
            entry: String::new(),
        })
    }

    fn js(dir: PathBuf) -> anyhow::Result<Project> {
        let path = dir.join("package.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let manifest: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        // A scoped package (`@org/name`) deploys as `name`.
        let name = manifest["name"]
            .as_str()
            .context("package.json has no name")?
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let kind = parse_kind(
            manifest["weft"]["kind"].as_str(),
            "\"weft\": {\"kind\"} in package.json",
        )?;
        let entry = manifest["main"]
            .as_str()
            .unwrap_or("src/index.js")
            .to_string();
        Ok(Project {
            dir,
            lang: Lang::Js,
            name,
            kind,
            entry,
        })
    }

    fn python(dir: PathBuf) -> anyhow::Result<Project> {
        let manifest = read_toml(&dir.join("pyproject.toml"))?;
        let name = manifest
            .get("project")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .context("pyproject.toml has no [project] name")?
            .to_string();
        let weft = manifest.get("tool").and_then(|t| t.get("weft"));
        let kind = parse_kind(
            weft.and_then(|w| w.get("kind")).and_then(|k| k.as_str()),
            "[tool.weft] kind in pyproject.toml",
        )?;
        let entry = weft
            .and_then(|w| w.get("module"))
            .and_then(|m| m.as_str())
            .unwrap_or("app")
            .to_string();
        Ok(Project {
            dir,
            lang: Lang::Python,
            name,
            kind,
            entry,
        })
    }

    /// The Python tools and dependencies `weft build` installs into the
    /// project's `.venv`: the project's own dependencies and its `build`
    /// dependency group.
    pub fn python_requirements(&self) -> anyhow::Result<Vec<String>> {
        let manifest = read_toml(&self.dir.join("pyproject.toml"))?;
        let strings = |v: Option<&toml::Value>| -> Vec<String> {
            v.and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut wanted = strings(manifest.get("project").and_then(|p| p.get("dependencies")));
        wanted.extend(strings(
            manifest
                .get("dependency-groups")
                .and_then(|g| g.get("build")),
        ));
        Ok(wanted)
    }
}

fn read_toml(path: &Path) -> anyhow::Result<toml::Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))
}

/// A missing kind means a workflow (the common case); a wrong one is an
/// error naming where it was read.
fn parse_kind(value: Option<&str>, place: &str) -> anyhow::Result<Kind> {
    match value {
        None => Ok(Kind::Workflow),
        Some(s) => Kind::parse(s)
            .with_context(|| format!("{place} is {s:?}; it should be \"workflow\" or \"rpc\"")),
    }
}
