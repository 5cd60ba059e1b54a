//! Builds the application from settings: opens the stores, applies migrations, binds the
//! listeners and returns the bound ports, so tests can run the real server on port 0.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::audit::Audit;
use crate::config::Settings;
use crate::error::AppError;
use crate::keys::ServerKey;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::store::Store;

/// Why the portal could not start. Each displays as the one line the program exits with.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Key(#[from] crate::keys::KeyError),
    #[error("cannot prepare the database directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database {url}: {source}")]
    Database { url: String, source: sea_orm::DbErr },
    /// A newer schema than this binary knows, or migrations that failed (`db::upgrade`).
    #[error("{0}")]
    Upgrade(#[from] crate::db::upgrade::UpgradeError),
    #[error("cannot open the object store: {0}")]
    Store(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// Opens everything the portal needs: key, database (migrated), object store, and starts this
/// process's audit writer (on the current Tokio runtime).
pub async fn open_state(settings: Settings) -> Result<AppState, StartupError> {
    let key = field_sealing(
        ServerKey::load_or_create(&settings.secret_key_file)?,
        &settings,
    )?;
    let manifest_key = std::sync::Arc::new(
        crate::signing::ManifestKey::load_or_create(&crate::signing::ManifestKey::path_beside(
            &settings.secret_key_file,
        ))?
        .with_sm2(std::sync::Arc::new(sm2_key(&settings)?)),
    );
    prepare_sqlite_file(&settings)?;
    let db = crate::db::connect(&settings.database_url, settings.db_timeout)
        .await
        .map_err(|source| StartupError::Database {
            url: settings.database_url.redacted(),
            source,
        })?;
    let upgraded = crate::db::upgrade::upgrade(&db, time::OffsetDateTime::now_utc()).await?;
    if let Some(copy) = &upgraded.backup {
        tracing::info!(copy = %copy.display(), migrations = upgraded.applied.len(), "database copied aside before migrating");
    }
    crate::db::contacts::seal_clear(&db, &key)
        .await
        .map_err(|source| StartupError::Database {
            url: settings.database_url.redacted(),
            source,
        })?;
    let store = Store::open_with(
        &settings.store_url,
        &settings.store_options,
        settings.store_timeout,
    )
    .map_err(|e| StartupError::Store(crate::error::chain(&e)))?;
    store
        .check(std::time::Duration::from_secs(10))
        .await
        .map_err(|e| StartupError::Store(crate::error::chain(&e)))?;
    let clock = crate::clock::Clock::default();
    let audit = Audit::start(db.clone(), clock.clone());
    Ok(AppState {
        channels: crate::state::Channels::of(&settings),
        webauthn: crate::state::relying_party(&settings).map(std::sync::Arc::new),
        settings,
        db,
        store,
        key,
        manifest_key,
        audit,
        clock,
        instance: uuid::Uuid::now_v7(),
        bundle_checks: std::sync::Arc::new(tokio::sync::Semaphore::new(2)),
    })
}

/// The server key sealing contact fields as the settings say: with `PORTAL_FIELD_CIPHER`, under
/// the key of `PORTAL_FIELD_KEY_FILE` where one is given.
fn field_sealing(key: ServerKey, settings: &Settings) -> Result<ServerKey, StartupError> {
    let cipher = crate::keys::FieldCipher::parse(&settings.field_cipher).unwrap_or_default();
    let key = key.with_field_cipher(cipher);
    Ok(match &settings.field_key_file {
        Some(path) => key.with_field_key_file(path)?,
        None => key,
    })
}

/// The SM2 key that signs beside the Ed25519 one: the file `PORTAL_SM2_KEY_FILE` gives (it must
/// exist), or the one beside the secret key, generated on first start.
pub fn sm2_key(settings: &Settings) -> Result<crate::signing::Sm2Key, crate::keys::KeyError> {
    match &settings.sm2_key_file {
        Some(given) => crate::signing::Sm2Key::load(given),
        None => crate::signing::Sm2Key::load_or_create(&crate::signing::Sm2Key::path_beside(
            &settings.secret_key_file,
        )),
    }
}

/// For SQLite: its directory (0700) and an empty database file (0600) before SQLite opens it —
/// its journal and WAL files take the database file's mode.
pub fn prepare_sqlite_file(settings: &Settings) -> Result<(), StartupError> {
    if settings.database_url.is_sqlite()
        && let Some(dir) = sqlite_dir(settings.database_url.expose())
    {
        crate::keys::create_private_dir(&dir).map_err(|source| StartupError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        // The database file is made private before SQLite opens it (its journal and WAL files
        // take the database file's mode).
        if let Some(file) = sqlite_file(settings.database_url.expose())
            && !file.exists()
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&file)
                .map_err(|source| StartupError::DataDir {
                    path: file.display().to_string(),
                    source,
                })?;
        }
    }
    Ok(())
}

/// The file a `sqlite://path?…` URL names, if any (not in-memory).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    if path.is_empty() || path.starts_with(':') {
        return None; // in-memory
    }
    Some(std::path::PathBuf::from(path))
}

/// The directory of a `sqlite://path?…` URL's file, if it names one.
fn sqlite_dir(url: &str) -> Option<std::path::PathBuf> {
    sqlite_file(url)?
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(std::path::Path::to_path_buf)
}

/// A running (not yet awaited) portal: its public server and, if configured, its metrics server.
pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    server: Server,
    metrics_server: Option<Server>,
}

impl Application {
    /// Opens the stores, migrates and binds. Port 0 in the settings picks a free port.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let state = web::Data::new(open_state(settings).await?);
        Self::build_with_state(state)
    }

    pub fn build_with_state(state: web::Data<AppState>) -> Result<Application, StartupError> {
        start_background_tasks(&state);
        let bind = state.settings.bind;
        let workers = state.settings.workers;
        let listener = TcpListener::bind(bind).map_err(|source| StartupError::Bind {
            addr: bind.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: bind.to_string(),
                source,
            })?
            .port();
        let metrics = web::Data::new(Metrics::default());

        let (metrics_server, metrics_port) = match state.settings.metrics_bind {
            Some(addr) => {
                let (server, port) = metrics_server(addr, metrics.clone())?;
                (Some(server), Some(port))
            }
            None => (None, None),
        };

        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(metrics.clone())
                .app_data(
                    web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()),
                )
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    AppError::bad_request("invalid_query", e.to_string()).into()
                }))
                .app_data(web::FormConfig::default().error_handler(|e, _| {
                    AppError::bad_request("invalid_form", e.to_string()).into()
                }))
                .app_data(web::JsonConfig::default().error_handler(|e, _| {
                    AppError::bad_request("invalid_json", e.to_string()).into()
                }))
                .wrap(from_fn(crate::auth::csrf::protect))
                .wrap(from_fn(crate::limits::pace_bodies))
                .wrap(security_headers())
                .wrap(from_fn(crate::metrics::track))
                .wrap(from_fn(crate::auth::extract::remember_signed_in))
                .wrap(from_fn(crate::routes::flash::show_once))
                .wrap(from_fn(crate::i18n::answer_in_the_request_language))
                // Pages, styles and scripts travel compressed (gzip or brotli, as the browser
                // accepts); evidence bytes say `Content-Encoding: identity` and pass untouched.
                .wrap(actix_web::middleware::Compress::default())
                .wrap(from_fn(crate::telemetry::trace_requests))
                .configure(crate::routes::configure)
                .default_service(web::to(crate::routes::not_found))
        })
        .shutdown_timeout(30)
        .workers(workers)
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: bind.to_string(),
            source,
        })?
        .run();

        Ok(Application {
            port,
            metrics_port,
            server,
            metrics_server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// A handle that stops the public server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT or SIGTERM (graceful: in-flight requests get 30 s to finish).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        match self.metrics_server {
            Some(metrics) => {
                let metrics_handle = metrics.handle();
                let metrics_task = tokio::spawn(metrics);
                let result = self.server.await;
                metrics_handle.stop(true).await;
                let _ = metrics_task.await;
                result
            }
            None => self.server.await,
        }
    }
}

/// The tasks every instance runs beside serving: the heartbeat, anchoring the audit chain,
/// sending notifications, reminders due by time, and the retention sweep.
fn start_background_tasks(state: &AppState) {
    // The heartbeat; closes the transfers of instances that stopped beating.
    tokio::spawn(crate::audit::transfers::keep_beating(
        state.db.clone(),
        state.audit.clone(),
        state.instance,
        state.settings.heartbeat,
    ));
    // Anchors the audit chain outside the database while the portal runs.
    tokio::spawn(crate::audit::checkpoint::keep_anchoring(
        state.db.clone(),
        state.store.clone(),
        state.manifest_key.clone(),
        std::time::Duration::from_secs(300),
    ));
    // Sends the notifications' outbox (SMS, e-mail) from this instance.
    tokio::spawn(crate::notifications::dispatch::keep_dispatching(
        state.db.clone(),
        state.audit.clone(),
        state.clock.clone(),
        std::sync::Arc::new(
            crate::notifications::dispatch::Senders::from_settings(&state.settings)
                .with_code_key(state.key.clone()),
        ),
        state.settings.notify_every,
    ));
    // Reminders due by time (review period, agency, access code), written once whichever
    // instance finds them.
    tokio::spawn(crate::cases::reminders::keep_reminding(
        state.db.clone(),
        state.channels,
        state.clock.clone(),
    ));
    // SM3 for materials recorded before issue 36, once, in the background.
    tokio::spawn(crate::materials::sm3::keep_filling(
        state.db.clone(),
        state.store.clone(),
    ));
    // Clears personal data past its period (`retention`), hourly, on every instance.
    tokio::spawn(crate::retention::keep_sweeping(
        state.db.clone(),
        state.audit.clone(),
        state.clock.clone(),
    ));
}

/// The metrics server on its own address (never the public one), one worker.
fn metrics_server(
    addr: std::net::SocketAddr,
    metrics: web::Data<Metrics>,
) -> Result<(Server, u16), StartupError> {
    let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(addr.port());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .route("/metrics", web::get().to(serve_metrics))
    })
    .workers(1)
    .listen(listener)
    .map_err(|source| StartupError::Bind {
        addr: addr.to_string(),
        source,
    })?
    .run();
    Ok((server, port))
}

/// The headers of DESIGN §4 on every response. `Cache-Control: no-store` is the default for
/// everything dynamic; static assets set their own.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             media-src 'self' blob:; object-src 'none'; frame-src 'self'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cross-Origin-Resource-Policy", "same-origin"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), interest-cohort=()",
        ))
        .add(("Cache-Control", "no-store"))
}

async fn serve_metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    match metrics.encode() {
        Ok(text) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(text),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_dir;
    use std::path::PathBuf;

    #[test]
    fn sqlite_urls_give_their_directory() {
        assert_eq!(
            sqlite_dir("sqlite://data/portal.db?mode=rwc"),
            Some(PathBuf::from("data"))
        );
        assert_eq!(
            sqlite_dir("sqlite:///tmp/x/p.db"),
            Some(PathBuf::from("/tmp/x"))
        );
        assert_eq!(sqlite_dir("sqlite::memory:"), None);
        assert_eq!(sqlite_dir("sqlite://p.db"), None);
    }
}
