//! Workflow projects outside this repository: `weft new` writes one from a
//! template embedded in the binary, `weft build` turns one into a component
//! with its language's own toolchain.
//!
//! A project is a folder with its language's manifest (`Cargo.toml`,
//! `package.json` or `pyproject.toml`), the WIT it builds against under
//! `wit/`, and its kind (workflow or RPC module) recorded in the manifest's
//! `weft` section. Nothing about it points back at a Weft checkout: the
//! SDKs are ordinary packages (`weft-sdk`/`weft-rpc` on crates.io,
//! `@weft/sdk` on npm, `weft-workflows` on PyPI).

mod build;
mod manifest;
mod new;
mod templates;

pub use build::build;
pub use new::new;

use std::fmt;

/// A language a project can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    #[value(name = "js", alias = "javascript")]
    Js,
    #[value(alias = "py")]
    Python,
}

impl Lang {
    /// How the docs and messages name the language.
    fn title(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Js => "JavaScript",
            Lang::Python => "Python",
        }
    }
}

/// What a project builds: the WIT world its component implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Workflow,
    Rpc,
}

impl Kind {
    /// The WIT world of `weft:workflow` a component of this kind implements.
    pub fn world(self) -> &'static str {
        match self {
            Kind::Workflow => "workflow",
            Kind::Rpc => "rpc",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        match s {
            "workflow" => Some(Kind::Workflow),
            "rpc" => Some(Kind::Rpc),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.world())
    }
}

/// Checks a project name: it has to be a valid crate, npm and PyPI name
/// and a Weft module name at once, so only lowercase ASCII letters,
/// digits and `-`, starting with a letter.
fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !starts_well || !rest_ok || name.ends_with('-') || name.len() > 64 {
        anyhow::bail!(
            "{name:?} cannot name a project: use lowercase letters, digits and `-`, \
             starting with a letter (it becomes the package and module name)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn project_names_fit_every_package_registry() {
        for good in ["hello", "order-saga", "a1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Hello", "1st", "my_flow", "trailing-", "../x", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
