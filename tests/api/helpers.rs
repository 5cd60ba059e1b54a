//! `spawn_app()` and the `TestApp` every test drives.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use actix_web::web;
use evidence_portal::config::Settings;
use evidence_portal::startup::{Application, open_state};
use evidence_portal::state::AppState;
use reqwest::StatusCode;
use tempfile::TempDir;
use uuid::Uuid;

pub struct TestApp {
    /// `http://127.0.0.1:{port}`, no trailing slash.
    pub address: String,
    pub metrics_address: Option<String>,
    /// Keeps cookies; never follows redirects (tests assert them).
    pub client: reqwest::Client,
    pub state: web::Data<AppState>,
    /// The variables this instance was configured from (CLI runs reuse them).
    pub env: HashMap<String, String>,
    /// The instance's data directory; removed when the test ends.
    _data_dir: TempDir,
    /// Stops the server when the owning `TestApp` is dropped (`None` for extra browsers).
    handle: Option<actix_web::dev::ServerHandle>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stops the workers; the handle's future needs no awaiting to take effect.
        if let Some(handle) = &self.handle {
            drop(handle.stop(false));
        }
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request failed")
    }

    pub async fn get_json(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .header("Accept", "application/json")
            .send()
            .await
            .expect("request failed")
    }
}

impl TestApp {
    /// The same running instance seen from another browser (its own cookies).
    pub fn with_client(&self, client: reqwest::Client) -> TestApp {
        TestApp {
            address: self.address.clone(),
            metrics_address: self.metrics_address.clone(),
            client,
            state: self.state.clone(),
            env: self.env.clone(),
            _data_dir: tempfile::tempdir().expect("temp dir"),
            handle: None,
        }
    }

    /// The CSRF token of this client's current page context: from the sign-in page when signed
    /// out (which also sets the anonymous cookie), else from `path`.
    pub async fn csrf_from(&self, path: &str) -> String {
        let html = self.get(path).await.text().await.unwrap();
        csrf_in(&html)
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .form(fields)
            .send()
            .await
            .expect("request failed")
    }
}

/// The value of the first `csrf_token` field of a page.
pub fn csrf_in(html: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = html.find(marker).expect("the page has a CSRF field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The CSRF token a multipart form carries in its action URL (`?csrf_token=…`).
pub fn csrf_in_action(html: &str) -> String {
    let marker = "?csrf_token=";
    let start = html.find(marker).expect("a form action with a CSRF token") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        // Idle connections are dropped before the server's keep-alive (actix: 5 s) closes them:
        // a request sent on a connection the server is closing fails with IncompleteMessage
        // (seen when a test pauses over its own work between two requests).
        .pool_idle_timeout(std::time::Duration::from_secs(3))
        .build()
        .expect("client")
}

/// The variables a test instance is configured with: a data directory of its own, port 0, and
/// the backends chosen for this run (each test isolated on them).
pub async fn test_env(data_dir: &Path) -> HashMap<String, String> {
    let mut env = HashMap::new();
    env.insert("PORTAL_BIND".into(), "127.0.0.1:0".into());
    env.insert("PORTAL_DATA_DIR".into(), data_dir.display().to_string());
    if let Some(admin_url) = non_empty_var("PORTAL_TEST_DATABASE_URL") {
        env.insert(
            "PORTAL_DATABASE_URL".into(),
            fresh_database(&admin_url).await,
        );
    }
    if let Some(store_url) = non_empty_var("PORTAL_TEST_STORE_URL") {
        let isolated = format!(
            "{}/test-{}",
            store_url.trim_end_matches('/'),
            Uuid::now_v7()
        );
        env.insert("PORTAL_STORE_URL".into(), isolated);
    }
    env
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Creates an empty database on the PostgreSQL server of `admin_url` and returns its URL.
async fn fresh_database(admin_url: &str) -> String {
    use sea_orm::ConnectionTrait;
    let name = format!("portal_test_{}", Uuid::now_v7().simple());
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("PORTAL_TEST_DATABASE_URL is set but unreachable: {e}"));
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create test database");
    let _ = admin.close().await;
    let mut url = url::Url::parse(admin_url).expect("PORTAL_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

pub fn settings_from(env: &HashMap<String, String>) -> Settings {
    Settings::from_sources(None, |k| env.get(k).cloned()).expect("test settings are valid")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts an instance after `customise` has adjusted its variables.
pub async fn spawn_app_with(customise: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut env = test_env(data_dir.path()).await;
    customise(&mut env);
    spawn_with_env(env, data_dir).await
}

pub async fn spawn_with_env(env: HashMap<String, String>, data_dir: TempDir) -> TestApp {
    let mut settings = settings_from(&env);
    // A test's own S3 endpoint (a proxy it can make hang), for this instance only.
    if let Some(endpoint) = env.get("TEST_STORE_ENDPOINT") {
        settings
            .store_options
            .push(("aws_endpoint".into(), endpoint.clone()));
    }
    let state = web::Data::new(open_state(settings).await.expect("portal state opens"));
    let app = Application::build_with_state(state.clone()).expect("portal binds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app.metrics_port().map(|p| format!("http://127.0.0.1:{p}"));
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        metrics_address,
        client: client(),
        state,
        env,
        _data_dir: data_dir,
        handle: Some(handle),
    }
}

pub fn assert_status(res: &reqwest::Response, expected: StatusCode) {
    assert_eq!(
        res.status(),
        expected,
        "unexpected status for {}",
        res.url()
    );
}

pub fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("response to {} has no {name} header", res.url()))
        .to_str()
        .expect("header is text")
}

/// A path under a regular file: no directory can ever be created there, even by root.
pub fn unwritable_dir(tmp: &Path) -> PathBuf {
    let blocker = tmp.join("blocker");
    std::fs::write(&blocker, b"a file, not a directory").expect("write blocker");
    blocker.join("data")
}

/// The authenticator apps the tests' staff and administrators enrolled, by instance and login:
/// the secret, the last step a code was used for (a code is accepted once), the recovery codes.
#[derive(Default, Clone)]
pub struct Enrolled {
    pub secret: Vec<u8>,
    pub last_step: i64,
    pub recovery: Vec<String>,
}

static ENROLLED: std::sync::LazyLock<std::sync::Mutex<HashMap<(String, String), Enrolled>>> =
    std::sync::LazyLock::new(Default::default);

/// Records an app enrolled outside the helpers (the demo's officer, whose key is known; one
/// enrolled in a browser), whose codes were last used for `last_step`.
pub fn enrolled_elsewhere(address: &str, login: &str, secret: &[u8], last_step: i64) {
    ENROLLED.lock().unwrap_or_else(|e| e.into_inner()).insert(
        (address.to_owned(), login.to_owned()),
        Enrolled {
            secret: secret.to_vec(),
            last_step,
            recovery: Vec::new(),
        },
    );
}

/// What `login` enrolled on the instance at `address`, if anything.
pub fn enrolled(address: &str, login: &str) -> Option<Enrolled> {
    ENROLLED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(address.to_owned(), login.to_owned()))
        .cloned()
}

/// The next code `login`'s app would give that the portal has not accepted yet: this step's,
/// the next one's (±1 step is accepted), else one of the recovery codes.
pub fn next_second_factor_code(address: &str, login: &str) -> Option<String> {
    let mut all = ENROLLED.lock().unwrap_or_else(|e| e.into_inner());
    let entry = all.get_mut(&(address.to_owned(), login.to_owned()))?;
    let now = time::OffsetDateTime::now_utc();
    let step = now.unix_timestamp() / 30;
    let next = step.max(entry.last_step + 1);
    if next <= step + 1 {
        entry.last_step = next;
        return evidence_portal::auth::second_factor::code_at(
            &entry.secret,
            time::OffsetDateTime::from_unix_timestamp(next * 30).ok()?,
        );
    }
    entry.recovery.pop()
}

/// Enrols an authenticator app for the signed-in staff member or administrator `login` of
/// `who`, as the page does (the secret read off it, the first code computed from it).
pub async fn enrol_second_factor(who: &TestApp, login: &str) {
    let page = who
        .get("/account/second-factor")
        .await
        .text()
        .await
        .unwrap();
    let res = who
        .post_form(
            "/account/second-factor/totp",
            &[("csrf_token", &csrf_in(&page))],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "the enrolment page");
    let page = res.text().await.unwrap();
    let secret_text = page
        .split(r#"id="totp-secret">"#)
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the key is shown")
        .replace(' ', "");
    let factor_id = page
        .split(r#"name="factor_id" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the enrolment's id")
        .to_owned();
    let secret = totp_rs::Secret::try_from_base32(&secret_text)
        .expect("base32")
        .as_bytes()
        .to_vec();
    let now = time::OffsetDateTime::now_utc();
    let code = evidence_portal::auth::second_factor::code_at(&secret, now).unwrap();
    let res = who
        .post_form(
            "/account/second-factor/totp/confirm",
            &[
                ("csrf_token", &csrf_in(&page)),
                ("factor_id", &factor_id),
                ("name", "测试手机"),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "the app is confirmed");
    let html = res.text().await.unwrap();
    let recovery: Vec<String> = html
        .split(r#"<li><code class="secret">"#)
        .skip(1)
        .filter_map(|s| s.split('<').next().map(str::to_owned))
        .collect();
    assert_eq!(recovery.len(), 10, "ten recovery codes shown");
    ENROLLED.lock().unwrap_or_else(|e| e.into_inner()).insert(
        (who.address.clone(), login.to_owned()),
        Enrolled {
            secret,
            last_step: now.unix_timestamp() / 30,
            recovery,
        },
    );
}

/// After a password for `login` that landed on a staff or administrator page: passes the second
/// factor (enrolling one first if the account has none), as the person would.
pub async fn second_factor_after(who: &TestApp, login: &str, res: &reqwest::Response) {
    let lands = res
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or("");
    if res.status() != StatusCode::SEE_OTHER
        || !(lands.starts_with("/staff") || lands.starts_with("/admin"))
    {
        return;
    }
    let challenge = who.get("/login/second-factor").await;
    if challenge.status() == StatusCode::SEE_OTHER {
        enrol_second_factor(who, login).await;
        return;
    }
    let page = challenge.text().await.unwrap();
    let code = next_second_factor_code(&who.address, login).expect("an enrolled app");
    let res = who
        .post_form(
            "/login/second-factor",
            &[
                ("csrf_token", &csrf_in(&page)),
                ("code", &code),
                ("next", ""),
            ],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "the second factor passes"
    );
}

/// The (outcome, details) of every audit event of `action`, oldest first.
#[allow(dead_code)] // The browser journeys' (they share this file).
pub async fn audit_actions(app: &TestApp, action: &str) -> Vec<(String, String)> {
    use evidence_portal::db::entities::audit_event;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq(action))
        .order_by_asc(audit_event::Column::Seq)
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.outcome, e.details))
        .collect()
}

/// The same account reached at another address (`localhost` for passkeys): its app and codes.
#[allow(dead_code)] // The browser journeys' (they share this file).
pub fn enrolled_also_at(from: &str, to: &str, login: &str) {
    let mut all = ENROLLED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = all.get(&(from.to_owned(), login.to_owned())).cloned() {
        all.insert((to.to_owned(), login.to_owned()), entry);
    }
}
