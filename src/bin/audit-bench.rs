//! Audit-log benchmark (a command, not a test): durable events per second with N concurrent
//! writers, and the cost of `audit verify`, on SQLite (default, a temporary file with the
//! portal's own settings) or on PostgreSQL (`--database postgres://…`: a throwaway database is
//! created on that server and dropped afterwards).
//!
//!     cargo run --release --bin audit-bench -- --writers 64 --events 200000

use std::time::{Duration, Instant};

use clap::Parser;
use evidence_portal::audit::{Action, Actor, Event, Outcome};
use evidence_portal::config::Settings;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

#[derive(Parser)]
#[command(about = "Measure the audit log: events/s under concurrency, and verify cost")]
struct Args {
    /// PostgreSQL server to use (a throwaway database is created there); SQLite if absent.
    #[arg(long)]
    database: Option<String>,
    /// Concurrent writers, each awaiting its own commit before the next event.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Events in all.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    evidence_portal::telemetry::init();
    let dir = tempfile::tempdir()?;
    let (url, pg) = match &args.database {
        Some(admin) => {
            let name = format!("portal_bench_{}", Uuid::now_v7().simple());
            let db = sea_orm::Database::connect(admin.as_str()).await?;
            db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await?;
            let mut url = url::Url::parse(admin)?;
            url.set_path(&format!("/{name}"));
            (url.to_string(), Some((db, name)))
        }
        None => (
            evidence_portal::config::sqlite_url(&dir.path().join("portal.db")),
            None,
        ),
    };
    let env = |k: &str| match k {
        "PORTAL_DATA_DIR" => Some(dir.path().display().to_string()),
        "PORTAL_DATABASE_URL" => Some(url.clone()),
        "PORTAL_STORE_URL" => Some("memory://".to_owned()),
        _ => None,
    };
    let settings = Settings::from_sources(None, env)?;
    let backend = if pg.is_some() { "postgres" } else { "sqlite" };
    let state = evidence_portal::startup::open_state(settings).await?;

    let per_writer = args.events.div_ceil(args.writers);
    let elapsed = record_concurrently(&state.audit, args.writers, per_writer).await?;
    let total = per_writer * args.writers;
    let rate = total as f64 / elapsed.as_secs_f64();

    let started = Instant::now();
    let verified = evidence_portal::audit::verify(&state.db).await?;
    let verify = started.elapsed();
    assert_eq!(
        verified.events as usize, total,
        "every event is in the chain"
    );
    let per_million = verify.as_secs_f64() * 1e6 / total as f64;

    println!("backend           {backend}");
    println!("writers           {}", args.writers);
    println!("events            {total}");
    println!(
        "record            {rate:.0} events/s ({:.2} s)",
        elapsed.as_secs_f64()
    );
    println!(
        "verify            {:.2} s ({per_million:.1} s per million events)",
        verify.as_secs_f64()
    );
    println!(
        "{}",
        serde_json::json!({
            "backend": backend, "writers": args.writers, "events": total,
            "events_per_second": rate.round(), "verify_seconds": round2(verify),
            "verify_seconds_per_million": (per_million * 10.0).round() / 10.0,
        })
    );

    drop(state);
    if let Some((admin, name)) = pg {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
    }
    Ok(())
}

/// Records `per_writer` events from each of `writers` concurrent tasks, each awaiting its
/// commit before the next; how long it took.
async fn record_concurrently(
    audit: &evidence_portal::audit::Audit,
    writers: usize,
    per_writer: usize,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let audit = audit.clone();
        tasks.push(tokio::spawn(async move {
            let case = Uuid::now_v7();
            for i in 0..per_writer {
                let event = Event::new(
                    Actor {
                        id: Some(Uuid::now_v7()),
                        role: evidence_portal::vocab::Role::Party.as_str(),
                    },
                    Action::MaterialView,
                    Outcome::Allowed,
                )
                .case(case)
                .material(Uuid::now_v7())
                .client(Some("127.0.0.1".into()), Some("audit-bench".into()))
                .details(serde_json::json!({ "writer": w, "i": i }));
                audit.record(event).await?;
            }
            Ok::<_, evidence_portal::audit::AuditError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

fn round2(d: Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}
