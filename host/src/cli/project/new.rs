//! `weft new`: a project in a new folder, from an embedded template.

use super::templates::{self, WIT};
use super::{Kind, Lang, check_name};
use anyhow::{Context as _, bail};
use std::path::Path;
use std::process::ExitCode;

/// Writes a `lang` project of `kind` named after the last component of
/// `path` into the new folder `path`. Refuses a folder that exists, so it
/// never overwrites anything.
pub fn new(path: &Path, lang: Lang, kind: Kind) -> anyhow::Result<ExitCode> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} does not end in a folder name", path.display()))?;
    check_name(name)?;
    if path.exists() {
        bail!(
            "{} already exists; `weft new` only creates new folders",
            path.display()
        );
    }
    let mut files: Vec<(String, String)> = templates::files(lang, kind)
        .into_iter()
        .map(|f| Ok((f.path.to_string(), templates::render(f.text, name)?)))
        .collect::<anyhow::Result<_>>()?;
    files.push(("wit/weft.wit".into(), WIT.to_string()));
    files.push((
        "README.md".into(),
        templates::render(&templates::readme(lang, kind), name)?,
    ));
    for (relative, text) in &files {
        let target = path.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    }
    eprintln!(
        "created {} ({} {kind}, {} files)\n  cd {}\n  weft build --run{}",
        path.display(),
        lang.title(),
        files.len(),
        path.display(),
        match kind {
            Kind::Workflow => r#" --input '{"name":"Ada"}'"#,
            Kind::Rpc => r#" --function greet --input '{"name":"Ada"}'"#,
        }
    );
    Ok(ExitCode::SUCCESS)
}
