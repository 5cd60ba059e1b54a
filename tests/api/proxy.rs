//! The portal behind `deploy/nginx.conf`: nginx started by the test with a self-signed
//! certificate, an upload and a resumed download through it over TLS and HTTP/2, HSTS, the
//! client's own address (not nginx's) in the audit log, a 1 GiB upload streamed through, and
//! the cookies of a sign-in over https (`__Host-`, `Secure`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use evidence_portal::db::entities::{account, audit_event, material, session};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use sha2::Digest;

use crate::cases::{agent_with_token, served_case_with_party, staff_of};
use crate::helpers::{TestApp, csrf_in, spawn_app_with};
use crate::materials::{PDF, decide};

const NGINX: &str = "/usr/sbin/nginx";
/// The client's address: curl binds it, nginx sees it, the portal must record it.
const CLIENT: &str = "127.0.0.2";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx, stopped when dropped.
struct Nginx(Child);

impl Drop for Nginx {
    /// SIGTERM, so that the master stops its workers (SIGKILL would orphan them).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts nginx with `deploy/nginx.conf`, its names, certificate and ports substituted.
fn start_nginx(dir: &Path, tls_port: u16, http_port: u16, portal_port: u16) -> Nginx {
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(ok.success(), "self-signed certificate");
    let site = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx.conf"))
        .unwrap()
        .replace(
            "server 127.0.0.1:8080;",
            &format!("server 127.0.0.1:{portal_port};"),
        )
        .replace("listen [::]:443 ssl http2;", "")
        .replace("listen [::]:80;", "")
        .replace(
            "listen 443 ssl http2;",
            &format!("listen 127.0.0.1:{tls_port} ssl http2;"),
        )
        .replace("listen 80;", &format!("listen 127.0.0.1:{http_port};"))
        .replace("evidence.example.gov.cn", "localhost")
        .replace(
            "/etc/ssl/evidence-portal/fullchain.pem",
            &dir.join("cert.pem").display().to_string(),
        )
        .replace(
            "/etc/ssl/evidence-portal/privkey.pem",
            &dir.join("key.pem").display().to_string(),
        );
    std::fs::write(dir.join("portal.conf"), site).unwrap();
    let d = dir.display();
    let main = format!(
        "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
         scgi_temp_path {d}/scgi;\n  include {d}/portal.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let nginx = Nginx(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not listen: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    nginx
}

/// curl through nginx from [`CLIENT`], over TLS (the self-signed certificate) and HTTP/2:
/// (status, headers, body).
///
/// Run as a child the runtime awaits: this test's runtime also runs the portal's audit writer.
async fn curl(url: &str, args: &[&str]) -> (u16, String, Vec<u8>) {
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "-k",
            "--http2",
            "--interface",
            CLIENT,
            "-D",
            "-",
            "-o",
            "/dev/stderr",
        ])
        .args(args)
        .arg(url)
        .output()
        .await
        .expect("curl runs");
    let headers = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = headers
        .lines()
        .last_status()
        .unwrap_or_else(|| panic!("no status from {url}: {headers}"));
    (status, headers, out.stderr)
}

trait LastStatus {
    fn last_status(self) -> Option<u16>;
}

impl<'a, I: Iterator<Item = &'a str>> LastStatus for I {
    /// The status of the last response (after any 100 Continue).
    fn last_status(self) -> Option<u16> {
        self.filter(|l| l.starts_with("HTTP/"))
            .last()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
    }
}

async fn last_event(app: &crate::helpers::TestApp, action: &str) -> audit_event::Model {
    audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq(action))
        .order_by_desc(audit_event::Column::Seq)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no {action} event"))
}

/// Whether nginx, curl and openssl are here; in CI they must be (elsewhere the test is skipped).
fn tools_ready() -> bool {
    let ready = Command::new(NGINX).arg("-v").output().is_ok()
        && Command::new("curl").arg("--version").output().is_ok()
        && Command::new("openssl").arg("version").output().is_ok();
    if !ready {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nginx, curl and openssl are needed for the proxy test in CI"
        );
        eprintln!("skipped: nginx, curl or openssl missing");
    }
    ready
}

/// A staff member's session (signed in and past the second factor, as the pages do it), to use
/// through the proxy as a browser would: (the staff member's own browser, the served case, its
/// party's row, the `Cookie:` header).
async fn staff_session(app: &TestApp) -> (TestApp, String, String, String) {
    let staff = staff_of(app, "110105", "wang.li").await;
    let (case_id, party_id) = served_case_with_party(&staff).await;
    let staff_id = account::Entity::find()
        .filter(account::Column::Role.eq(evidence_portal::vocab::Role::Staff))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .id;
    let (row, token) =
        evidence_portal::auth::session::start(&app.state.db, &app.state.key, staff_id, None, None)
            .await
            .unwrap();
    session::Entity::update_many()
        .col_expr(
            session::Column::SecondFactorAt,
            sea_orm::sea_query::Expr::value(Some(time::OffsetDateTime::now_utc())),
        )
        .filter(session::Column::Id.eq(row.id))
        .exec(&app.state.db)
        .await
        .unwrap();
    let cookie = format!(
        "Cookie: {}={token}",
        evidence_portal::auth::session::cookie_name(&app.state.settings)
    );
    (staff, case_id, party_id, cookie)
}

#[tokio::test]
async fn through_nginx_an_upload_and_a_resumed_download_keep_the_clients_address() {
    if !tools_ready() {
        return;
    }
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_TRUSTED_PROXIES".into(), "127.0.0.1".into());
    })
    .await;
    let portal_port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (tls_port, http_port) = (free_port(), free_port());
    let _nginx = start_nginx(dir.path(), tls_port, http_port, portal_port);
    let base = format!("https://localhost:{tls_port}");

    // Plain http is sent to https.
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .arg(format!("http://127.0.0.1:{http_port}/healthz"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.starts_with("301 https://"), "{said}");

    let (staff, case_id, party_id, cookie) = staff_session(&app).await;
    let (status, headers, page) =
        curl(&format!("{base}/staff/cases/{case_id}"), &["-H", &cookie]).await;
    assert_eq!(status, 200, "{headers}");
    assert!(
        headers.starts_with("HTTP/2 "),
        "HTTP/2 through the proxy: {headers}"
    );
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{headers}"
    );
    let csrf = csrf_in(&String::from_utf8_lossy(&page));

    // The upload, streamed through.
    let file = dir.path().join("鉴定意见.pdf");
    std::fs::write(&file, PDF).unwrap();
    let (status, headers, body) = curl(
        &format!("{base}/staff/cases/{case_id}/materials"),
        &[
            "-H",
            &cookie,
            "-H",
            &format!("X-CSRF-Token: {csrf}"),
            "-H",
            "Accept: application/json",
            "-F",
            "kind=expert_opinion",
            "-F",
            "title=鉴定意见",
            "-F",
            &format!("file=@{}", file.display()),
        ],
    )
    .await;
    assert_eq!(status, 201, "{headers}{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let upload = last_event(&app, "material.upload").await;
    assert_eq!(upload.material_id.map(|m| m.to_string()), Some(id.clone()));
    decide(&staff, &case_id, &id, "release", &[]).await;

    // A download cut after 30 bytes and resumed with a range: the same bytes.
    let (_agent, api_token) = agent_with_token(&app, &staff, &case_id, &party_id).await;
    let bearer = format!("Authorization: Bearer {api_token}");
    let url = format!("{base}/cases/{case_id}/materials/{id}/download");
    let (status, headers, first) = curl(&url, &["-H", &bearer, "-r", "0-29"]).await;
    assert_eq!(status, 206, "{headers}{}", String::from_utf8_lossy(&first));
    let (status, headers, rest) = curl(&url, &["-H", &bearer, "-r", "30-"]).await;
    assert_eq!(status, 206, "{headers}");
    assert_eq!(
        [first, rest].concat(),
        PDF,
        "the resumed download is the file"
    );
    let download = last_event(&app, "material.download").await;
    assert_eq!(download.client_ip.as_deref(), Some(CLIENT), "{download:?}");
}

const GIB: u64 = 1024 * 1024 * 1024;

/// A portal behind nginx as `deploy/nginx.conf` says to set it up (its public URL https, nginx
/// trusted), with nginx started in front: (the portal, nginx, its https base URL, nginx's
/// directory).
async fn behind_nginx(
    customise: impl FnOnce(&mut std::collections::HashMap<String, String>),
) -> (TestApp, Nginx, String, tempfile::TempDir) {
    let (tls_port, http_port) = (free_port(), free_port());
    let base = format!("https://localhost:{tls_port}");
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_TRUSTED_PROXIES".into(), "127.0.0.1".into());
        env.insert("PORTAL_PUBLIC_URL".into(), format!("{base}/"));
        customise(env);
    })
    .await;
    let portal_port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let nginx = start_nginx(dir.path(), tls_port, http_port, portal_port);
    (app, nginx, base, dir)
}

/// The size and SHA-256 of a stream of chunks.
async fn hash_stream<S, B, E>(body: S) -> (u64, String)
where
    S: futures_util::Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: std::fmt::Debug,
{
    use futures_util::StreamExt;
    let (mut sha, mut size) = (sha2::Sha256::new(), 0u64);
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        size += chunk.as_ref().len() as u64;
        sha.update(chunk.as_ref());
    }
    (size, hex::encode(sha.finalize()))
}

/// 1 GiB uploaded through nginx over TLS and HTTP/2 arrives whole: nginx passes the body on as
/// it comes (request buffering off, `client_max_body_size` above the portal's 2G limit), and the
/// portal stores and records exactly what curl sent. The file is sparse (an MP4 head, then
/// zeros): the client's disk holds a few bytes of it, curl reads it as it sends.
#[tokio::test]
async fn through_nginx_a_1_gib_upload_arrives_whole() {
    if !tools_ready() {
        return;
    }
    // The local directory store whatever this run's backend: 1 GiB into the CI's S3 server
    // (moto, which keeps objects in memory) would test moto, not the proxy.
    let (app, _nginx, base, dir) = behind_nginx(|env| {
        env.remove("PORTAL_STORE_URL");
    })
    .await;
    assert!(
        app.state.settings.max_upload_bytes > GIB,
        "the default limit"
    );
    let (_staff, case_id, _party, cookie) = staff_session(&app).await;
    let (status, headers, page) =
        curl(&format!("{base}/staff/cases/{case_id}"), &["-H", &cookie]).await;
    assert_eq!(status, 200, "{headers}");
    let csrf = csrf_in(&String::from_utf8_lossy(&page));

    let file = dir.path().join("行车记录仪.mp4");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&file).unwrap();
        f.write_all(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
            .unwrap();
        f.set_len(GIB).unwrap();
    }
    let reader = std::fs::File::open(&file).unwrap();
    let blocks = futures_util::stream::unfold(reader, |mut reader| async move {
        use std::io::Read;
        let mut block = vec![0u8; 1024 * 1024];
        let n = reader.read(&mut block).unwrap();
        block.truncate(n);
        (n > 0).then_some((Ok::<_, std::io::Error>(block), reader))
    });
    let sent = hash_stream(blocks).await;
    assert_eq!(sent.0, GIB);

    let started = Instant::now();
    let (status, headers, body) = curl(
        &format!("{base}/staff/cases/{case_id}/materials"),
        &[
            "-H",
            &cookie,
            "-H",
            &format!("X-CSRF-Token: {csrf}"),
            "-H",
            "Accept: application/json",
            "-F",
            "kind=video",
            "-F",
            "title=行车记录仪全程",
            "-F",
            &format!("file=@{}", file.display()),
        ],
    )
    .await;
    let took = started.elapsed().as_secs_f64();
    assert_eq!(status, 201, "{headers}{}", String::from_utf8_lossy(&body));
    println!(
        "1 GiB upload through nginx (TLS, HTTP/2): {took:.1} s, {:.0} MB/s",
        GIB as f64 / took / 1e6
    );
    let id: uuid::Uuid = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let row = material::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.size as u64, row.sha256.clone()), sent, "recorded");
    let key = evidence_portal::store::ObjectKey::from_stored(&row.object_key).unwrap();
    let stored = app.state.store.get(&key, None).await.unwrap();
    assert_eq!(hash_stream(stored.body).await, sent, "stored");
}

/// The `Set-Cookie` value that sets `name` (its attributes after the first `;`).
fn set_cookie<'a>(headers: &'a str, name: &str) -> &'a str {
    headers
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.trim())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set: {headers}"))
}

/// The `Location` of an answer's headers.
fn location(headers: &str) -> String {
    headers
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or_else(|| panic!("no location: {headers}"))
        .trim()
        .to_owned()
}

/// `Secure`, `HttpOnly`, `SameSite=Strict`, `Path=/` and no `Domain`: sent only over https, to
/// this host alone, never read by scripts.
fn assert_secure_host_only(cookie: &str) {
    let attributes: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for wanted in ["secure", "httponly", "samesite=strict", "path=/"] {
        assert!(
            attributes.iter().any(|a| a == wanted),
            "{cookie}: {wanted}?"
        );
    }
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain")),
        "{cookie}: a Domain"
    );
}

/// Signing in through nginx over https, as `deploy/nginx.conf` says to set the portal up: the
/// session cookie is `__Host-` (so no other host, not even a sibling subdomain, can set or
/// overwrite it), `Secure` and `HttpOnly`; so is the pre-sign-in CSRF cookie (a sibling
/// subdomain cannot plant one to bind a victim's sign-in to the attacker's token). The session cookie, sent back through nginx, is the session.
#[tokio::test]
async fn through_nginx_a_sign_in_over_https_gets_secure_host_only_cookies() {
    if !tools_ready() {
        return;
    }
    let (app, _nginx, base, _dir) = behind_nginx(|_| {}).await;
    let _staff = staff_of(&app, "110105", "wang.li").await;

    let (status, headers, page) = curl(&format!("{base}/login"), &[]).await;
    assert_eq!(status, 200, "{headers}");
    let anonymous = set_cookie(&headers, "__Host-portal-csrf");
    assert_secure_host_only(anonymous);
    let anonymous = anonymous.split(';').next().unwrap().to_owned();
    let csrf = csrf_in(&String::from_utf8_lossy(&page));

    let (status, headers, _) = curl(
        &format!("{base}/login"),
        &[
            "-H",
            &format!("Cookie: {anonymous}"),
            "--data-urlencode",
            &format!("csrf_token={csrf}"),
            "--data-urlencode",
            "identifier=wang.li",
            "--data-urlencode",
            &format!("password={}", crate::auth::PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 303, "{headers}");
    let session = set_cookie(&headers, "__Host-portal-session");
    assert_secure_host_only(session);
    let session = session.split(';').next().unwrap().to_owned();
    let next = location(&headers);
    // Sent back through nginx, the cookie is the session: the staff member is asked for the
    // second factor, not the password again (as they are without it).
    let (status, headers, _) = curl(&format!("{base}{next}"), &[]).await;
    assert_eq!(status, 303, "{headers}");
    let without = location(&headers);
    assert!(
        without.starts_with("/login?") && !without.starts_with("/login/second-factor"),
        "{without}"
    );
    let (status, headers, _) = curl(
        &format!("{base}{next}"),
        &["-H", &format!("Cookie: {session}")],
    )
    .await;
    assert_eq!(status, 303, "{headers}");
    assert!(
        location(&headers).starts_with("/login/second-factor"),
        "{headers}"
    );
}
