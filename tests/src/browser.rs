//! A real browser for the console's tests: Debian's headless Chromium,
//! driven over WebDriver by `chromedriver` (both installed by `make test`,
//! see `scripts/setup-debian`), through the `fantoccini` client.
//!
//! Every page a test looks at can be saved as a screenshot under
//! `target/console-screenshots/`, for people to look at.

use anyhow::{Context, bail};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for the page to show something.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A `chromedriver` process and a headless Chromium session through it;
/// both end when this is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    shots: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The first of `names` found on `PATH`.
fn program(names: &[&str]) -> anyhow::Result<String> {
    for name in names {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()?;
        if found.status.success() {
            return Ok(String::from_utf8_lossy(&found.stdout).trim().to_string());
        }
    }
    bail!(
        "none of {names:?} is installed: `make test` installs Debian's chromium and chromium-driver (scripts/setup-debian)"
    )
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a laptop-sized
    /// window; screenshots go to `target/console-screenshots/<group>/`.
    pub async fn start(group: &str) -> anyhow::Result<Self> {
        let driver_bin = program(&["chromedriver"])?;
        let chromium = program(&["chromium", "chromium-browser", "google-chrome"])?;
        let port = free_port()?;
        // In a process group of its own, so that a test that fails before
        // closing its session takes Chromium down with chromedriver.
        let mut driver = Command::new(driver_bin)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let url = format!("http://127.0.0.1:{port}");
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1440,1000"],
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if started.elapsed() < PATIENCE => {
                    if let Ok(Some(status)) = driver.try_wait() {
                        bail!("chromedriver exited with {status}: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    let _ = driver.kill();
                    bail!("no WebDriver session with Chromium: {e}");
                }
            }
        };
        let shots = crate::root()
            .join("target")
            .join("console-screenshots")
            .join(group);
        std::fs::create_dir_all(&shots)?;
        Ok(Self {
            client,
            driver,
            shots,
        })
    }

    /// Saves what the window shows as `<name>.png`.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Saves the whole page, scrolled or not, as `<name>.png`: the window
    /// is grown to the page's height for the shot, then put back.
    pub async fn full_page_screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let height = self
            .client
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await?
            .as_u64()
            .unwrap_or(1000)
            .clamp(600, 6000) as u32;
        self.client.set_window_size(1440, height + 120).await?;
        let path = self.screenshot(name).await;
        self.client.set_window_size(1440, 1000).await?;
        path
    }

    /// The first element matching `css`, once there is one.
    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no element matches {css:?}"))
    }

    /// Every element matching `css` now.
    pub async fn all(&self, css: &str) -> anyhow::Result<Vec<Element>> {
        Ok(self.client.find_all(Locator::Css(css)).await?)
    }

    /// Attribute `attr` of every element matching `css`, read in one
    /// script: a page that re-renders meanwhile cannot leave a stale
    /// reference behind.
    pub async fn attrs(&self, css: &str, attr: &str) -> anyhow::Result<Vec<String>> {
        let found = self
            .client
            .execute(
                "return [...document.querySelectorAll(arguments[0])].map(e => e.getAttribute(arguments[1]) || '');",
                vec![css.into(), attr.into()],
            )
            .await?;
        Ok(serde_json::from_value(found)?)
    }

    /// The text of the first element matching `css`, once there is one.
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        Ok(self.find(css).await?.text().await?)
    }

    /// Waits until the text of `css` satisfies `ok` (the page updates by
    /// itself: no reload is made here).
    pub async fn wait_for_text(
        &self,
        css: &str,
        ok: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < PATIENCE {
            if let Ok(found) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = found.text().await
            {
                if ok(&text) {
                    return Ok(text);
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{css:?} never showed what was expected; last: {last:?}")
    }

    /// Replaces the value of the field `css` with `text`.
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let field = self.find(css).await?;
        field.clear().await?;
        field.send_keys(text).await?;
        Ok(())
    }
}

impl Browser {
    /// Ends the session, so chromedriver closes Chromium.
    pub async fn close(self) -> anyhow::Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
