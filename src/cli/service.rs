//! Running as a service: `serve` with systemd's readiness and watchdog notifications, `migrate`
//! (which refuses a newer schema and copies an SQLite database aside first), `healthcheck` for
//! monitors and timers, and `gc`'s retention sweeps. The unit is `deploy/evidence-portal.service`.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use super::{Failure, MigrateAction, Settings};
use crate::db::upgrade::{self, Level};
use crate::startup::Application;

/// How long each part of `healthcheck` may take to answer.
const EACH: Duration = Duration::from_secs(5);

pub(super) async fn serve(settings: Settings) -> Result<(), Failure> {
    let started = Instant::now();
    let state = actix_web::web::Data::new(
        crate::startup::open_state(settings.clone())
            .await
            .map_err(|e| e.to_string())?,
    );
    let db = state.db.clone();
    let app = Application::build_with_state(state).map_err(|e| e.to_string())?;
    tracing::info!(
        url = %format!("http://{}:{}/", settings.bind.ip(), app.port()),
        metrics_port = app.metrics_port(),
        ms = started.elapsed().as_millis() as u64,
        "portal ready"
    );
    // Listening: systemd (Type=notify) may start what depends on the portal.
    tell_systemd(&[NotifyState::Ready, NotifyState::Status("serving")]);
    if let Some(interval) = sd_notify::watchdog_enabled() {
        tokio::spawn(keep_the_watchdog_fed(db, interval, settings.db_timeout));
    }
    let served = app.run_until_stopped().await;
    tell_systemd(&[NotifyState::Stopping]);
    served.map_err(|e| e.to_string())?;
    tracing::info!("portal stopped");
    Ok(())
}

/// Without `NOTIFY_SOCKET` (not under systemd) this does nothing.
fn tell_systemd(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Pings systemd's watchdog (`WatchdogSec=`) at half its interval, but only while the database
/// answers: a wedged database stops the pings and systemd restarts the portal.
async fn keep_the_watchdog_fed(
    db: sea_orm::DatabaseConnection,
    interval: Duration,
    db_timeout: Duration,
) {
    let every = interval / 2;
    let within = every.min(db_timeout).max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match crate::db::check(&db, within).await {
            Ok(()) => tell_systemd(&[NotifyState::Watchdog]),
            Err(e) => tracing::warn!(error = %e, "database not answering: watchdog not fed"),
        }
    }
}

pub(super) async fn migrate(settings: Settings, action: MigrateAction) -> Result<(), Failure> {
    crate::startup::prepare_sqlite_file(&settings).map_err(|e| e.to_string())?;
    let db = crate::db::connect(&settings.database_url, settings.db_timeout)
        .await
        .map_err(|e| {
            format!(
                "cannot open the database {}: {e}",
                settings.database_url.redacted()
            )
        })?;
    match action {
        MigrateAction::Apply => {
            let upgraded = upgrade::upgrade(&db, time::OffsetDateTime::now_utc())
                .await
                .map_err(|e| e.to_string())?;
            if let Some(copy) = &upgraded.backup {
                println!(
                    "copied the database to {} before applying {} migration(s)",
                    copy.display(),
                    upgraded.applied.len()
                );
            }
        }
        MigrateAction::Status => {
            upgrade::refuse_newer(&db)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let status = crate::db::migration_status(&db)
        .await
        .map_err(|e| format!("cannot read migration status: {e}"))?;
    for (name, applied) in status {
        println!("{}  {name}", if applied { "applied" } else { "pending" });
    }
    Ok(())
}

/// `healthcheck`: the database (and its schema level), the object store, the audit log and the
/// render font, each on a line with `ok` or `FAIL`, each within [`EACH`]. Reads only: it never
/// migrates, creates a key or writes an event.
pub(super) async fn healthcheck(settings: Settings) -> Result<(), Failure> {
    let mut failing = Vec::new();
    let mut report = |part: &'static str, started: Instant, result: Result<String, String>| {
        let ms = started.elapsed().as_millis();
        match result {
            Ok(detail) => println!("{part:<8} ok    {detail} ({ms} ms)"),
            Err(why) => {
                println!("{part:<8} FAIL  {why}");
                failing.push(part);
            }
        }
    };

    let started = Instant::now();
    let db = bounded(database(&settings)).await;
    let (db, result) = match db {
        Ok((db, detail)) => (Some(db), Ok(detail)),
        Err(why) => (None, Err(why)),
    };
    report("database", started, result);

    let started = Instant::now();
    let store = crate::store::Store::open_with(
        &settings.store_url,
        &settings.store_options,
        settings.store_timeout,
    )
    .map_err(|e| crate::error::chain(&e));
    let result = match &store {
        Ok(store) => {
            bounded(async {
                store
                    .check(EACH)
                    .await
                    .map(|()| format!("{} answers", store.kind()))
                    .map_err(|e| crate::error::chain(&e))
            })
            .await
        }
        Err(why) => Err(why.clone()),
    };
    report("store", started, result);

    let started = Instant::now();
    let result = match (&db, &store) {
        (Some(db), Ok(store)) => bounded(audit(&settings, db, store)).await,
        _ => Err("needs the database and the store".to_owned()),
    };
    report("audit", started, result);

    let started = Instant::now();
    let font = &settings.watermark_font;
    let result = crate::render::ready(font)
        .map(|()| format!("watermark font {}", font.display()))
        .map_err(|e| e.to_string());
    report("font", started, result);

    if failing.is_empty() {
        Ok(())
    } else {
        Err(Failure::Other(format!(
            "not healthy: {}",
            failing.join(", ")
        )))
    }
}

/// `check`, or a failure once [`EACH`] has passed.
async fn bounded<T>(
    check: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(EACH, check)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", EACH.as_secs())))
}

/// The database answers, and its schema is this binary's (neither pending nor newer). An SQLite
/// file that is not there is reported, not created.
async fn database(settings: &Settings) -> Result<(sea_orm::DatabaseConnection, String), String> {
    let url = &settings.database_url;
    if let Some(file) = crate::startup::sqlite_file(url.expose())
        && !file.exists()
    {
        return Err(format!("no database file {}", file.display()));
    }
    let db = crate::db::connect(url, settings.db_timeout.min(EACH))
        .await
        .map_err(|e| format!("cannot open {}: {e}", url.redacted()))?;
    crate::db::check(&db, EACH).await?;
    let level = upgrade::level(&db).await.map_err(|e| e.to_string())?;
    match level {
        Level::Current { at } => Ok((db, format!("schema {at}"))),
        Level::Fresh => Err("no schema yet: run `evidence-portal migrate`".into()),
        Level::Pending { pending, .. } => Err(format!(
            "{} migration(s) pending: start the portal or run `evidence-portal migrate`",
            pending.len()
        )),
        Level::Newer { at, latest } => Err(upgrade::UpgradeError::Newer { at, latest }.to_string()),
    }
}

/// The audit log could take an event now: the chain head reads, the database takes a write
/// transaction (SQLite's write lock, taken and given back; PostgreSQL not read-only), and the
/// newest signed checkpoint in the store reads, verifies, and is not ahead of the chain.
async fn audit(
    settings: &Settings,
    db: &sea_orm::DatabaseConnection,
    store: &crate::store::Store,
) -> Result<String, String> {
    use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
    let (seq, _) = crate::audit::checkpoint::head(db)
        .await
        .map_err(|e| format!("cannot read the chain head: {e}"))?
        .unwrap_or((0, String::new()));
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let txn = db
                .begin_with_options(sea_orm::TransactionOptions {
                    sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("the database takes no write: {e}"))?;
            txn.rollback().await.map_err(|e| e.to_string())?;
        }
        backend => {
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    backend,
                    "SELECT current_setting('transaction_read_only') AS ro",
                ))
                .await
                .map_err(|e| e.to_string())?;
            let read_only: Option<String> = row.and_then(|r| r.try_get("", "ro").ok());
            if read_only.as_deref() == Some("on") {
                return Err("the database is read-only".into());
            }
        }
    }
    let key_path = crate::signing::ManifestKey::path_beside(&settings.secret_key_file);
    if !key_path.exists() {
        return Err(format!("no manifest key {}", key_path.display()));
    }
    let key = crate::signing::ManifestKey::load_or_create(&key_path).map_err(|e| e.to_string())?;
    let checkpoint = crate::audit::checkpoint::latest(store, &key)
        .await
        .map_err(|e| format!("cannot read the newest checkpoint: {e}"))?;
    // A restore from a backup leaves the older history's checkpoints ahead of the chain: fine
    // when a signed, anchored `system.restore` event explains them (audit::restored).
    let explained = match &checkpoint {
        Some(c) if c.seq > seq => crate::audit::restored::explained(db, store, &key, c)
            .await
            .map_err(|e| format!("cannot read the audit log: {e}"))?,
        _ => false,
    };
    match checkpoint {
        Some(c) if c.seq > seq && explained => Ok(format!(
            "chain head {seq}, restored from a backup (the checkpoint of event {} is of the history before it)",
            c.seq
        )),
        Some(c) if c.seq > seq => Err(format!(
            "the signed checkpoint of event {} is ahead of the chain head {seq}",
            c.seq
        )),
        Some(c) => Ok(format!("chain head {seq}, newest checkpoint {}", c.seq)),
        None => Ok(format!("chain head {seq}, no checkpoint yet")),
    }
}

/// `gc`'s part for personal data past its period: each sweep that finds anything, one line.
pub(super) async fn retention(state: &crate::state::AppState, delete: bool) -> Result<(), Failure> {
    let swept = crate::retention::sweep(&state.db, &state.audit, state.clock.now(), delete)
        .await
        .map_err(|e| format!("cannot sweep personal data past its period: {e}"))?;
    for (what, n) in swept.lines().into_iter().filter(|(_, n)| *n > 0) {
        println!(
            "{}  {n}  {what}  (retention)",
            if delete { "cleared" } else { "due" }
        );
    }
    Ok(())
}
