//! `weft build`: a project's component, made by its language's own
//! toolchain. JavaScript and Python tools are installed into the project
//! (`node_modules/`, `.venv/`) the first time, never globally, so two
//! projects can pin different versions.

use super::manifest::Project;
use super::{Kind, Lang};
use anyhow::{Context as _, bail};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A built project: its description and the component file.
pub struct Built {
    pub project: Project,
    pub wasm: PathBuf,
}

/// Builds the project in `dir` and reports where the component is (on
/// stderr, so `weft build --run --json` keeps stdout to the run).
pub fn build(dir: &Path) -> anyhow::Result<Built> {
    let project = Project::read(dir)?;
    let wasm = match project.lang {
        Lang::Rust => build_rust(&project)?,
        Lang::Js => build_js(&project)?,
        Lang::Python => build_python(&project)?,
    };
    let size = std::fs::metadata(&wasm)
        .with_context(|| format!("the build made no {}", wasm.display()))?
        .len();
    eprintln!(
        "built {} ({} {}, {} KB)",
        wasm.display(),
        project.lang.title(),
        project.kind,
        size.div_ceil(1024)
    );
    Ok(Built { project, wasm })
}

const WASM_TARGET: &str = "wasm32-wasip2";

fn build_rust(project: &Project) -> anyhow::Result<PathBuf> {
    // Adding an installed target is a no-op; without rustup (a distro's
    // Rust) the build below says what is missing. Run in the project, so
    // its rust-toolchain.toml picks the toolchain that gets the target.
    if which("rustup") {
        run(
            Command::new("rustup")
                .args(["--quiet", "target", "add", WASM_TARGET])
                .current_dir(&project.dir),
            "rustup",
        )?;
    }
    run(
        cargo(&project.dir).args(["build", "--release", "--target", WASM_TARGET]),
        "cargo build",
    )?;
    let (target_dir, lib) = cdylib_of(project)?;
    // cargo names the artefact after the library (underscores); every
    // language's component ends up as dist/<project name>.wasm.
    let artefact = target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", lib.replace('-', "_")));
    let wasm = dist_file(project)?;
    std::fs::copy(&artefact, &wasm)
        .with_context(|| format!("copying {} to {}", artefact.display(), wasm.display()))?;
    Ok(wasm)
}

/// Cargo's target directory and the name of the package's `cdylib`
/// target, from `cargo metadata` (which knows `[lib] name` and
/// `CARGO_TARGET_DIR`).
fn cdylib_of(project: &Project) -> anyhow::Result<(PathBuf, String)> {
    let out = Command::new(cargo_program())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(&project.dir)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("cargo metadata printed no JSON")?;
    let target_dir = metadata["target_directory"]
        .as_str()
        .context("cargo metadata names no target directory")?;
    let package = metadata["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == project.name.as_str()))
        .context("cargo metadata does not list the package")?;
    let lib = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
        .and_then(|t| t["name"].as_str())
        .with_context(|| {
            format!(
                "{} builds no cdylib: a component needs `[lib] crate-type = [\"cdylib\"]` in Cargo.toml",
                project.name
            )
        })?;
    Ok((PathBuf::from(target_dir), lib.to_string()))
}

/// `dist/<project name>.wasm`, with `dist/` created.
fn dist_file(project: &Project) -> anyhow::Result<PathBuf> {
    let dist = project.dir.join("dist");
    std::fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;
    Ok(dist.join(format!("{}.wasm", project.name)))
}

fn build_js(project: &Project) -> anyhow::Result<PathBuf> {
    let bin = project.dir.join("node_modules/.bin");
    // The package.json installed last time, so an added dependency is
    // installed again.
    let manifest = std::fs::read_to_string(project.dir.join("package.json"))
        .context("reading package.json")?;
    let stamp = project.dir.join("node_modules/.weft-package.json");
    let installed = ["esbuild", "componentize-js"]
        .iter()
        .all(|t| bin.join(t).exists())
        && project
            .dir
            .join("node_modules/@weft/sdk/package.json")
            .exists()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(manifest.as_str());
    if !installed {
        eprintln!("installing the JavaScript tools into node_modules (npm install)");
        run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&project.dir),
            "npm install",
        )?;
        std::fs::write(&stamp, &manifest).context("recording the installed package.json")?;
    }
    let wasm = dist_file(project)?;
    let bundle = wasm.with_extension("bundle.js");
    // `weft:*` imports are the component's WIT imports, resolved by
    // componentize-js, not files.
    run(
        Command::new(bin.join("esbuild"))
            .arg(&project.entry)
            .args([
                "--bundle",
                "--format=esm",
                "--platform=neutral",
                "--log-level=warning",
            ])
            .arg("--external:weft:*")
            .arg(format!("--outfile={}", bundle.display()))
            .current_dir(&project.dir),
        "esbuild",
    )?;
    run(
        Command::new(bin.join("componentize-js"))
            .arg(&bundle)
            .args(["--wit", "wit", "--world-name", project.kind.world()])
            .arg("--disable")
            .args(js_disabled_features(project.kind))
            .arg("--out")
            .arg(&wasm)
            .current_dir(&project.dir),
        "componentize-js",
    )?;
    Ok(wasm)
}

/// The StarlingMonkey features a component goes without. Workflows get no
/// `wasi:http` (their network is their steps); RPC modules keep it, so
/// `fetch` works there, through the host's per-module allow-list. Neither
/// serves incoming requests.
fn js_disabled_features(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Workflow => &["http", "fetch-event"],
        Kind::Rpc => &["fetch-event"],
    }
}

fn build_python(project: &Project) -> anyhow::Result<PathBuf> {
    let venv = project.dir.join(".venv");
    let python = venv.join("bin/python");
    // A .venv without a working pip (half made, or made by another tool)
    // is made again rather than failing every build after it.
    let usable = Command::new(&python)
        .args(["-m", "pip", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        eprintln!("creating .venv for the Python tools");
        let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run(
            Command::new(&system_python)
                .args(["-m", "venv", "--clear"])
                .arg(&venv),
            "python3 -m venv",
        )?;
    }
    // The requirements installed last time, so a changed pyproject.toml
    // is installed again.
    let wanted = project.python_requirements()?.join("\n");
    let stamp = venv.join(".weft-requirements");
    let tool = venv.join("bin/componentize-py");
    if !tool.exists() || std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        eprintln!("installing the Python tools into .venv (pip install)");
        run(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(wanted.lines())
                .current_dir(&project.dir),
            "pip install",
        )?;
        std::fs::write(&stamp, &wanted).context("recording the installed requirements")?;
    }
    let site = Command::new(&python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .context("asking .venv for its site-packages")?;
    if !site.status.success() {
        bail!(
            ".venv/bin/python cannot name its site-packages: {}",
            String::from_utf8_lossy(&site.stderr)
        );
    }
    let site = String::from_utf8_lossy(&site.stdout).trim().to_string();
    let wit = python_wit_args(project.kind, Path::new(&site))?;
    let wasm = dist_file(project)?;
    run(
        Command::new(&tool)
            .args(&wit)
            .args(["componentize", &project.entry])
            .args(["--python-path", ".", "--python-path", &site])
            .arg("--output")
            .arg(&wasm)
            .current_dir(&project.dir),
        "componentize-py",
    )?;
    Ok(wasm)
}

/// componentize-py's WIT arguments. A workflow builds against the
/// project's `wit/` alone. An RPC module also gets the WIT the SDK ships
/// in its package (`weft/wit/`, installed into `.venv`): the world
/// `weft:http-client/rpc`, which is `weft:workflow/rpc@0.2.0` (read from
/// the project's `wit/`) plus the `wasi:http` imports `weft.http` sends
/// requests through. componentize-py binds only what the world names, so
/// without it the module would have no HTTP at all.
fn python_wit_args(kind: Kind, site_packages: &Path) -> anyhow::Result<Vec<String>> {
    match kind {
        Kind::Workflow => Ok(["--wit-path", "wit", "--world", kind.world()]
            .map(String::from)
            .into()),
        Kind::Rpc => {
            let sdk_wit = site_packages.join("weft/wit");
            if !sdk_wit.join("http-client.wit").is_file() {
                bail!(
                    "{} is missing: the weft-workflows in .venv is older than this weft \
                     (upgrade it: .venv/bin/pip install -U weft-workflows)",
                    sdk_wit.join("http-client.wit").display()
                );
            }
            Ok(vec![
                "--wit-path".into(),
                "wit".into(),
                "--wit-path".into(),
                sdk_wit.to_string_lossy().into_owned(),
                "--world".into(),
                "weft:http-client/rpc".into(),
            ])
        }
    }
}

fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn cargo(dir: &Path) -> Command {
    let mut command = Command::new(cargo_program());
    command.current_dir(dir);
    command
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Runs a build tool with its output going to stderr, and turns a failure
/// into an error naming the tool.
fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let program = command.get_program().to_owned();
    let status = command
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status()
        .with_context(|| format!("{what}: cannot start {}", display(&program)))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn display(program: &OsStr) -> String {
    program.to_string_lossy().into_owned()
}
