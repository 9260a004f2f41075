//! Workflow projects outside the repository, as a new user makes them:
//! `weft new` for every language and kind in a temporary folder, `weft
//! build` with the language's own toolchain, `weft run` of each workflow
//! with an RPC module of another language, and each project's own test.
//!
//! The projects depend on the SDKs by package name only. The packages are
//! the ones `make packages` made (what the registries would receive), and
//! each package manager is pointed at them the way a user would point it at
//! a mirror: a cargo `[patch.crates-io]` in a parent `.cargo/config.toml`,
//! a registry for npm's `@weft` scope served by this test, and pip's
//! `--find-links`. Nothing else of the checkout is reachable, which the
//! test checks by searching the projects for the checkout's path.

use serde_json::Value;
use sha2::{Digest, Sha512};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use weft_tests::{DevServer, root, weft_bin};

const LANGS: [&str; 3] = ["rust", "js", "python"];

#[test]
fn new_projects_build_and_run_in_every_language_and_kind() {
    let packages = Packages::find();
    let scratch = tempfile::Builder::new()
        .prefix("weft-projects-")
        .tempdir_in(std::env::temp_dir())
        .expect("a temporary folder");
    let home = scratch.path();
    assert!(
        !home.starts_with(root()),
        "the projects must live outside the checkout"
    );
    let registry = NpmRegistry::serve(&packages.npm_tarball);
    let env = packages.resolution(home, &registry.url);

    // `weft new` for each language and kind.
    for lang in LANGS {
        for (kind, prefix) in [("workflow", "hello"), ("rpc", "greeter")] {
            let out = weft(
                home,
                &env,
                &[
                    "new",
                    &format!("{prefix}-{lang}"),
                    "--lang",
                    lang,
                    "--kind",
                    kind,
                ],
            );
            assert_success(&out, "weft new");
        }
    }
    assert_mentions_no_checkout(home);

    // `weft build --run`: each workflow alone, each RPC module's function.
    for lang in LANGS {
        let project = home.join(format!("hello-{lang}"));
        let out = weft(
            &project,
            &env,
            &["build", "--run", "--json", "--input", r#"{"name":"Ada"}"#],
        );
        assert_success(&out, &format!("weft build --run in hello-{lang}"));
        let report: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
        assert_eq!(
            report["run"]["output"]["greeting"], "Hello, Ada!",
            "hello-{lang}"
        );
        assert_eq!(
            report["run"]["workflow"],
            format!("hello-{lang}"),
            "named after the project"
        );

        let project = home.join(format!("greeter-{lang}"));
        let out = weft(
            &project,
            &env,
            &[
                "build",
                "--run",
                "--function",
                "greet",
                "--input",
                r#"{"name":"Ada"}"#,
            ],
        );
        assert_success(&out, &format!("weft build --run in greeter-{lang}"));
        let result: Value = serde_json::from_slice(&out.stdout).expect("the result as JSON");
        assert_eq!(
            result["greeting"], "Hello, Ada! (RPC attempt 1)",
            "greeter-{lang}"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("dist/greeter-{lang}.wasm")),
            "weft build says where the component is"
        );
    }

    // `weft run`: each workflow calls the RPC module of the next language.
    for (i, lang) in LANGS.iter().enumerate() {
        let rpc_lang = LANGS[(i + 1) % LANGS.len()];
        let workflow = home.join(format!("hello-{lang}/dist/hello-{lang}.wasm"));
        let module = home.join(format!("greeter-{rpc_lang}/dist/greeter-{rpc_lang}.wasm"));
        let out = weft(
            home,
            &env,
            &[
                "run",
                &workflow.to_string_lossy(),
                "--rpc",
                &format!("greeter={}", module.display()),
                "--input",
                r#"{"name":"Ada","greeter":"greeter"}"#,
                "--replay-every-step",
                "--json",
            ],
        );
        assert_success(
            &out,
            &format!("{lang} workflow with the {rpc_lang} RPC module"),
        );
        let report: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
        assert_eq!(
            report["run"]["output"]["greeting"], "Hello, Ada! (RPC attempt 1)",
            "{lang} workflow × {rpc_lang} RPC"
        );
    }

    // `weft deploy <folder>` builds, then uploads under the project's name.
    let server = DevServer::start(&home.join("server"), &[]).expect("weft dev");
    for project in ["greeter-python", "hello-js"] {
        let out = weft(
            home,
            &env,
            &[
                "deploy",
                &home.join(project).to_string_lossy(),
                "--server",
                &server.url,
            ],
        );
        assert_success(&out, &format!("weft deploy {project}/"));
    }
    let out = weft(
        home,
        &env,
        &[
            "start",
            "hello-js",
            "--input",
            r#"{"name":"Ada","greeter":"greeter-python"}"#,
            "--wait",
            "--server",
            &server.url,
        ],
    );
    assert_success(&out, "weft start hello-js");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Hello, Ada! (RPC attempt 1)"), "{stdout}");
    drop(server);

    // Each project's own test, with its language's test runner.
    for lang in LANGS {
        for prefix in ["hello", "greeter"] {
            let project = home.join(format!("{prefix}-{lang}"));
            let mut test = match lang {
                "rust" => {
                    let mut c = Command::new("cargo");
                    c.args(["test", "--quiet"]);
                    c
                }
                "js" => {
                    let mut c = Command::new("npm");
                    c.args(["test", "--silent"]);
                    c
                }
                _ => {
                    let mut c = Command::new(project.join(".venv/bin/python"));
                    c.args(["-m", "unittest"]);
                    c
                }
            };
            let out = test
                .current_dir(&project)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .output()
                .expect("starting the project's test runner");
            assert_success(&out, &format!("the own test of {prefix}-{lang}"));
        }
    }
    assert_mentions_no_checkout(home);
}

#[test]
fn project_commands_refuse_bad_input_clearly() {
    let scratch = tempfile::tempdir().expect("a temporary folder");
    let home = scratch.path();
    let env = Vec::new();

    let out = weft(home, &env, &["new", "My_Flow", "--lang", "rust"]);
    assert_failure(&out, "lowercase letters, digits and `-`");

    assert_success(
        &weft(home, &env, &["new", "taken", "--lang", "js"]),
        "weft new",
    );
    let out = weft(home, &env, &["new", "taken", "--lang", "python"]);
    assert_failure(&out, "already exists");
    assert!(
        home.join("taken/package.json").exists(),
        "the first project is untouched"
    );
    assert!(!home.join("taken/pyproject.toml").exists());

    let empty = home.join("empty");
    std::fs::create_dir(&empty).expect("a folder");
    assert_failure(&weft(&empty, &env, &["build"]), "is not a Weft project");

    std::fs::write(
        home.join("taken/package.json"),
        r#"{"name": "taken", "weft": {"kind": "saga"}}"#,
    )
    .expect("editing package.json");
    assert_failure(
        &weft(&home.join("taken"), &env, &["build"]),
        "\"workflow\" or \"rpc\"",
    );
}

/// Where the packaged SDKs are, and how each package manager is pointed at
/// them.
struct Packages {
    crates: Vec<(String, PathBuf)>,
    npm_tarball: PathBuf,
    wheels: PathBuf,
}

impl Packages {
    fn find() -> Packages {
        let target = root().join("target");
        let missing = |what: &str| -> ! {
            panic!("{what} is missing: run `make packages` (part of `make test`)")
        };
        let crates = ["weft-sdk", "weft-rpc", "weft-guest-core"]
            .into_iter()
            .map(|name| {
                let dir = newest(&target.join("package"), &format!("{name}-"), "")
                    .unwrap_or_else(|| missing(&format!("target/package/{name}-*")));
                // The crate holds its Rust sources and WIT, not the other
                // SDKs that share its folder.
                for stray in ["js", "python", "node_modules"] {
                    assert!(!dir.join(stray).exists(), "the {name} crate packs {stray}/");
                }
                (name.to_string(), dir)
            })
            .collect();
        let npm_tarball = newest(&target.join("packages"), "weft-sdk-", ".tgz")
            .unwrap_or_else(|| missing("target/packages/weft-sdk-*.tgz"));
        newest(&target.join("packages"), "weft_workflows-", ".whl")
            .unwrap_or_else(|| missing("target/packages/weft_workflows-*.whl"));
        Packages {
            crates,
            npm_tarball,
            wheels: target.join("packages"),
        }
    }

    /// The environment every command of the test runs with, and the cargo
    /// configuration written into `home`.
    fn resolution(&self, home: &Path, npm_registry: &str) -> Vec<(String, String)> {
        let mut config = String::from("[patch.crates-io]\n");
        for (name, dir) in &self.crates {
            config.push_str(&format!(
                "{name} = {{ path = {:?} }}\n",
                dir.display().to_string()
            ));
        }
        std::fs::create_dir_all(home.join(".cargo")).expect("creating .cargo");
        std::fs::write(home.join(".cargo/config.toml"), config).expect("writing the cargo config");
        let weft = weft_bin();
        let path = format!(
            "{}:{}",
            weft.parent().expect("a folder").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        vec![
            ("PATH".into(), path),
            ("WEFT".into(), weft.display().to_string()),
            ("npm_config_@weft:registry".into(), npm_registry.to_string()),
            // Ahead of any find-links the machine already has.
            ("PIP_FIND_LINKS".into(), find_links(&self.wheels)),
            // One build folder for both Rust projects, inside the scratch
            // folder, so the dependencies compile once.
            (
                "CARGO_TARGET_DIR".into(),
                home.join("cargo-target").display().to_string(),
            ),
        ]
    }
}

/// pip's `--find-links` (a space-separated list) with `wheels` first.
fn find_links(wheels: &Path) -> String {
    match std::env::var("PIP_FIND_LINKS") {
        Ok(existing) if !existing.trim().is_empty() => format!("{} {existing}", wheels.display()),
        _ => wheels.display().to_string(),
    }
}

/// The newest entry of `dir` named `<prefix>…<suffix>`.
fn newest(dir: &Path, prefix: &str, suffix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(prefix) && name.ends_with(suffix) && !name.ends_with(".crate")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

/// A registry for npm's `@weft` scope holding one package: the tarball
/// `npm pack` made. npm asks it for the package document, then the tarball.
struct NpmRegistry {
    url: String,
}

impl NpmRegistry {
    fn serve(tarball: &Path) -> NpmRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let url = format!("http://{}/", listener.local_addr().expect("an address"));
        let bytes = std::fs::read(tarball).expect("reading the npm tarball");
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(root().join("guest-sdk/js/package.json")).expect("the SDK manifest"),
        )
        .expect("package.json is JSON");
        let version = manifest["version"].as_str().expect("a version").to_string();
        let integrity = {
            use base64::Engine as _;
            let digest = Sha512::digest(&bytes);
            format!(
                "sha512-{}",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        };
        let mut release = manifest.clone();
        release["dist"] = serde_json::json!({
            "tarball": format!("{url}@weft/sdk/-/sdk-{version}.tgz"),
            "integrity": integrity,
        });
        let document = serde_json::json!({
            "name": "@weft/sdk",
            "dist-tags": { "latest": version },
            "versions": { version.clone(): release },
        })
        .to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request_line = String::new();
                let mut reader = BufReader::new(&stream);
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // Drain the headers; npm sends no body with a GET.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("/");
                let (status, kind, body): (&str, &str, &[u8]) = if path.ends_with(".tgz") {
                    ("200 OK", "application/octet-stream", &bytes)
                } else if path.contains("weft%2fsdk") || path.contains("weft/sdk") {
                    ("200 OK", "application/json", document.as_bytes())
                } else {
                    ("404 Not Found", "application/json", b"{}")
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream
                    .write_all(head.as_bytes())
                    .and_then(|()| stream.write_all(body));
            }
        });
        NpmRegistry { url }
    }
}

fn weft(dir: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    Command::new(weft_bin())
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("starting weft")
}

fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_failure(out: &Output, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected a failure saying {says:?}; got success"
    );
    assert!(stderr.contains(says), "expected {says:?} in:\n{stderr}");
}

/// No file a project keeps (sources, manifests, lock files) names the
/// checkout: everything came through package names.
fn assert_mentions_no_checkout(home: &Path) {
    let checkout = root().display().to_string();
    let skip = [
        "node_modules",
        ".venv",
        "target",
        "cargo-target",
        "dist",
        ".cargo",
    ];
    let mut stack = vec![home.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("listing a project")
            .filter_map(Result::ok)
        {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !skip.contains(&name.as_str()) {
                    stack.push(path);
                }
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                assert!(
                    !text.contains(&checkout),
                    "{} names the checkout ({checkout})",
                    path.display()
                );
            }
        }
    }
}
