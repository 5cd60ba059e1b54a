//! Headless Chromium through chromedriver: one chromedriver for the tests of this binary that run
//! at the same time, one fresh browser profile and download directory per journey, screenshots of
//! every step at a phone and a desktop size, and a screenshot of the step that failed.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The sizes every step is photographed at: a small phone and an office PC.
pub const SIZES: [(u32, u32); 2] = [(360, 740), (1280, 800)];
/// The size the journeys are driven at.
const WORKING: (u32, u32) = (1280, 800);
/// Longest wait for anything the page does on its own (a navigation, an upload, a download).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// What a step returns: any error fails the journey after a screenshot of the failing state.
pub type Outcome<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// `ensure!(condition, "message {}", x)`: a failed check inside a step.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+).into());
        }
    };
}

/// Whether this machine can run the journeys. Locally a missing browser skips them with a note;
/// under CI (`CI` set) it fails them, so a broken image cannot pass by running nothing.
pub fn browser_available(journey: &str) -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI is set but {} missing: install chromium chromium-driver",
            missing.join(" and ")
        );
    }
    eprintln!(
        "skipping browser journey {journey}: {} not installed (apt-get install chromium chromium-driver)",
        missing.join(" and ")
    );
    false
}

/// A running chromedriver; stopped when the last journey using it lets go.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static DRIVER: Mutex<Weak<Driver>> = Mutex::new(Weak::new());

fn shared_driver() -> Outcome<Arc<Driver>> {
    let mut slot = DRIVER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(driver) = slot.upgrade() {
        return Ok(driver);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // The night leg of .ci/run fakes the clock of the tests and the portal with libfaketime;
    // Chromium under it hangs, so the browser keeps the real clock. Nothing needs the two to
    // agree: the session cookie has no expiry (the server checks its own `exp`), the language
    // cookie a Max-Age.
    let child = Command::new(CHROMEDRIVER)
        .env_remove("LD_PRELOAD")
        .env_remove("FAKETIME")
        .env_remove("FAKETIME_DONT_FAKE_MONOTONIC")
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let driver = Arc::new(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    });
    *slot = Arc::downgrade(&driver);
    Ok(driver)
}

async fn wait_until_ready(driver: &Driver) -> Outcome {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(res) = http.get(format!("{}/status", driver.url)).send().await
            && let Ok(status) = res.json::<Value>().await
            && status["value"]["ready"] == json!(true)
        {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "chromedriver did not answer on {} within {PATIENCE:?}",
            driver.url
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One journey's browser: its own profile, download directory and screenshot folder.
pub struct Browser {
    pub client: Client,
    /// `http://127.0.0.1:{port}` of the portal under test.
    pub base: String,
    pub downloads: TempDir,
    shots: PathBuf,
    session_url: String,
    http: reqwest::Client,
    _profile: TempDir,
    _driver: Arc<Driver>,
}

/// `<target>/browser-screenshots/<journey>`, emptied at the start of the journey.
pub fn screenshot_dir(journey: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(Path::new("target"))
        .join("browser-screenshots")
        .join(journey)
}

impl Browser {
    pub async fn open(journey: &str, base: &str) -> Outcome<Browser> {
        let driver = shared_driver()?;
        wait_until_ready(&driver).await?;
        let profile = tempfile::tempdir()?;
        let downloads = tempfile::tempdir()?;
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--lang=zh-CN",
                    format!("--window-size={},{}", WORKING.0, WORKING.1),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path().display().to_string(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                    "intl.accept_languages": "zh-CN,zh",
                },
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&driver.url)
            .await?;
        let session = client
            .session_id()
            .await?
            .ok_or("no WebDriver session id")?;
        let shots = screenshot_dir(journey);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots)?;
        let browser = Browser {
            client,
            base: base.to_owned(),
            downloads,
            shots,
            session_url: format!("{}/session/{session}", driver.url),
            http: reqwest::Client::new(),
            _profile: profile,
            _driver: driver,
        };
        browser.set_viewport(WORKING).await?;
        Ok(browser)
    }

    /// Adds a WebDriver virtual authenticator (WebAuthn Level 2, §11): a platform passkey
    /// provider that verifies its user and consents without anyone touching it. Its id.
    pub async fn add_virtual_authenticator(&self) -> Outcome<String> {
        let res: Value = self
            .http
            .post(format!("{}/webauthn/authenticator", self.session_url))
            .json(&json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            }))
            .send()
            .await?
            .json()
            .await?;
        Ok(res["value"]
            .as_str()
            .ok_or(format!("no authenticator: {res}"))?
            .to_owned())
    }

    /// Removes a virtual authenticator (its passkeys go with it).
    pub async fn remove_virtual_authenticator(&self, id: &str) -> Outcome {
        self.http
            .delete(format!("{}/webauthn/authenticator/{id}", self.session_url))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Ends the browser session (Chromium exits); the profile directory is removed on drop.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Runs one step of the journey. On success every size gets a full-page screenshot named
    /// after the step; on an error or a panic the page as it is gets `FAILED-<step>`, the
    /// browser is closed and the test panics with the cause.
    pub async fn step<T>(&self, name: &str, work: impl Future<Output = Outcome<T>>) -> T {
        let cause: String = match AssertUnwindSafe(work).catch_unwind().await {
            Ok(Ok(value)) => match self.screenshots(name).await {
                Ok(()) => return value,
                Err(e) => format!("screenshots: {e}"),
            },
            Ok(Err(e)) => e.to_string(),
            Err(panic) => panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panic".to_owned()),
        };
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let shot = self.shots.join(format!("FAILED-{name}.png"));
        if let Ok(png) = self.full_page_png().await {
            let _ = std::fs::write(&shot, png);
        }
        let _ = self.client.clone().close().await;
        panic!(
            "step {name} failed at {url}: {cause}\n(screenshot: {})",
            shot.display()
        );
    }

    async fn screenshots(&self, step: &str) -> Outcome {
        for size in SIZES {
            self.set_viewport(size).await?;
            let png = self.full_page_png().await?;
            std::fs::write(self.shots.join(format!("{step}-{}.png", size.0)), png)?;
            let violations = self.axe().await?;
            if !violations.is_empty() {
                return Err(format!("axe at {} px: {}", size.0, violations.join("; ")).into());
            }
        }
        self.set_viewport(WORKING).await
    }

    /// A Chrome DevTools command through chromedriver (`goog/cdp/execute`): what WebDriver
    /// itself cannot do — an exact CSS viewport and a screenshot of the whole page.
    async fn cdp(&self, cmd: &str, params: Value) -> Outcome<Value> {
        let res = self
            .http
            .post(format!("{}/goog/cdp/execute", self.session_url))
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await?;
        ensure!(status.is_success(), "{cmd}: {status} {body}");
        Ok(body["value"].clone())
    }

    /// Emulates a device of `width`×`height` CSS pixels (a phone below 600: mobile viewport).
    pub async fn set_viewport(&self, (width, height): (u32, u32)) -> Outcome {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 }),
        )
        .await?;
        Ok(())
    }

    async fn full_page_png(&self) -> Outcome<Vec<u8>> {
        use base64::Engine;
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await?;
        let data = shot["data"].as_str().ok_or("no screenshot data")?;
        Ok(base64::engine::general_purpose::STANDARD.decode(data)?)
    }

    // Driving the page.

    pub async fn goto(&self, path: &str) -> Outcome {
        self.client.goto(&format!("{}{path}", self.base)).await?;
        Ok(())
    }

    /// The path of the current page (`/cases/…`).
    pub async fn path(&self) -> Outcome<String> {
        Ok(self.client.current_url().await?.path().to_owned())
    }

    /// Waits until the page's path is `path` (after a click that navigates).
    pub async fn wait_for_path(&self, path: &str) -> Outcome {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = self.path().await?;
            if now == path {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "expected to arrive at {path}, still at {now}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn find(&self, css: &str) -> Outcome<fantoccini::elements::Element> {
        Ok(self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .map_err(|e| format!("no element {css}: {e}"))?)
    }

    /// Clicks `css` (a submit button or link) and waits until the next page has loaded.
    pub async fn click_and_load(&self, css: &str) -> Outcome {
        let element = self.find(css).await?;
        self.js("window.__portalOldPage = true;", vec![]).await?;
        element.click().await?;
        self.wait_js(
            &format!("the page after clicking {css}"),
            "return !window.__portalOldPage && document.readyState === 'complete';",
            vec![],
        )
        .await
    }

    /// Submits the zip at `bundle` to `/verify`, as its recipient would, and returns the verdict
    /// the page puts first.
    pub async fn verify_bundle(&self, bundle: &Path) -> Outcome<String> {
        self.goto("/verify").await?;
        self.find("#bundle")
            .await?
            .send_keys(&bundle.display().to_string())
            .await?;
        self.click_and_load(r#"form[action^="/verify"] button[type="submit"]"#)
            .await?;
        self.text("#verdict").await
    }

    /// Reloads the page, as F5 does, and waits until it has loaded again.
    pub async fn reload(&self) -> Outcome {
        self.js("window.__portalOldPage = true;", vec![]).await?;
        self.client.refresh().await?;
        self.wait_js(
            "the page reloaded",
            "return !window.__portalOldPage && document.readyState === 'complete';",
            vec![],
        )
        .await
    }

    /// Signs in through the form at `/login` and waits to land on `landing`.
    pub async fn sign_in(&self, identifier: &str, password: &str, landing: &str) -> Outcome {
        self.goto("/login").await?;
        self.fill("#identifier", identifier).await?;
        self.fill("#password", password).await?;
        self.click_and_load(r#"form[action="/login"] button[type="submit"]"#)
            .await?;
        // Staff and administrators: the code of the app the test set-up enrolled.
        if self.path().await? == "/login/second-factor" {
            let code = crate::helpers::next_second_factor_code(&self.base, identifier)
                .ok_or("no authenticator app enrolled for this account")?;
            self.fill("#code", &code).await?;
            self.click_and_load(r#"form[action="/login/second-factor"] button[type="submit"]"#)
                .await?;
        }
        self.wait_for_path(landing).await
    }

    /// Signs a staff member or administrator in with the password alone and waits on the second
    /// factor's page (the journeys that pass it themselves).
    pub async fn password_then_second_factor(&self, identifier: &str, password: &str) -> Outcome {
        self.goto("/login").await?;
        self.fill("#identifier", identifier).await?;
        self.fill("#password", password).await?;
        self.click_and_load(r#"form[action="/login"] button[type="submit"]"#)
            .await?;
        self.wait_for_path("/login/second-factor").await
    }

    /// Activates an account at `/activate` with the code from its notice, choosing `password`,
    /// and waits to land on the case list.
    pub async fn activate(&self, identifier: &str, code: &str, password: &str) -> Outcome {
        self.goto("/activate").await?;
        self.fill("#identifier", identifier).await?;
        self.fill("#code", code).await?;
        self.fill("#password", password).await?;
        self.fill("#password_repeat", password).await?;
        self.click_and_load(r#"form[action="/activate"] button[type="submit"]"#)
            .await?;
        self.wait_for_path("/cases").await
    }

    /// Limits upload speed to `bytes_per_second` (`None`: no limit), like a slow office line.
    pub async fn throttle_upload(&self, bytes_per_second: Option<u32>) -> Outcome {
        self.cdp("Network.enable", json!({})).await?;
        self.cdp(
            "Network.emulateNetworkConditions",
            json!({
                "offline": false,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": bytes_per_second.map_or(-1, i64::from),
            }),
        )
        .await?;
        Ok(())
    }

    pub async fn fill(&self, css: &str, text: &str) -> Outcome {
        let field = self.find(css).await?;
        field.clear().await?;
        field.send_keys(text).await?;
        Ok(())
    }

    pub async fn click(&self, css: &str) -> Outcome {
        self.find(css).await?.click().await?;
        Ok(())
    }

    pub async fn text(&self, css: &str) -> Outcome<String> {
        Ok(self.find(css).await?.text().await?)
    }

    /// Evaluates `script` (a function body; `arguments` as given) in the page.
    /// The accessibility violations axe-core finds on the page as it is (WCAG 2.1 A/AA, and in
    /// the care mode (长辈版) also the enhanced contrast of 7:1, `color-contrast-enhanced`), each
    /// "rule: where"; none when axe-core is not installed (`npm install axe-core` into
    /// target/axe; .ci/run does, and with CI set a missing axe fails).
    pub async fn axe(&self) -> Outcome<Vec<String>> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/axe/node_modules/axe-core/axe.min.js");
        let Ok(source) = std::fs::read_to_string(&path) else {
            if std::env::var_os("CI").is_some() {
                return Err(format!("axe-core is not installed at {}", path.display()).into());
            }
            return Ok(Vec::new());
        };
        let loaded = self
            .js("return typeof window.axe !== 'undefined';", vec![])
            .await?;
        if loaded != Value::Bool(true) {
            self.client.execute(&source, vec![]).await?;
        }
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 const care = document.documentElement.classList.contains('care');
                 axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] })
                    .then(r => !care ? r.violations : axe.run(document, {
                        runOnly: { type: 'rule', values: ['color-contrast-enhanced'] } })
                        .then(e => r.violations.concat(e.violations)))
                    .then(found => done(found.map(v => v.id + ': ' +
                        v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))))
                    .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await?;
        Ok(serde_json::from_value(found)?)
    }

    pub async fn js(&self, script: &str, args: Vec<Value>) -> Outcome<Value> {
        Ok(self.client.execute(script, args).await?)
    }

    /// Polls `script` until it returns `true`, describing the wait as `what` on time-out.
    pub async fn wait_js(&self, what: &str, script: &str, args: Vec<Value>) -> Outcome {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.js(script, args.clone()).await? == json!(true) {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for one completed download with `extension` that was not in `before`, and returns
    /// its path (Chromium writes `*.crdownload` first and renames when complete).
    pub async fn wait_for_download(&self, extension: &str, before: &[PathBuf]) -> Outcome<PathBuf> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let done: Vec<PathBuf> = self
                .downloaded()?
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == extension))
                .filter(|p| !before.contains(p))
                .collect();
            if let Some(path) = done.into_iter().next() {
                return Ok(path);
            }
            ensure!(
                Instant::now() < deadline,
                "no .{extension} download in {} after {PATIENCE:?} (there: {:?})",
                self.downloads.path().display(),
                self.downloaded()?
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every entry of a downloaded zip by name, read through (which checks each CRC-32).
    pub fn unzip(path: &Path) -> Outcome<std::collections::BTreeMap<String, Vec<u8>>> {
        use std::io::Read;
        let mut archive = zip::ZipArchive::new(std::fs::File::open(path)?)?;
        let mut entries = std::collections::BTreeMap::new();
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i)?;
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            entries.insert(entry.name()?.into_owned(), bytes);
        }
        Ok(entries)
    }

    /// Everything in the download directory, partial downloads included.
    pub fn downloaded(&self) -> Outcome<Vec<PathBuf>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(self.downloads.path())? {
            files.push(entry?.path());
        }
        files.sort();
        Ok(files)
    }
}
