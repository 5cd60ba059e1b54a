//! The command line: `serve` (the default), `migrate`, `create-admin`.
//!
//! Usage errors exit 2 (clap); any other failure prints one line to stderr and exits 1.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::audit::{Action, Actor, Event, Outcome};
use crate::auth::{identifier, password};
use crate::config::Settings;

mod accounts;
mod backup;
mod bundle_check;
mod records;
mod render_cache;
mod service;

/// China Standard Time, in which times are printed and bare dates on the command line read.
const CST: time::UtcOffset = crate::db::times::CST;

use crate::vocab::Role;
use accounts::{AccountAction, account};
use records::{audit, gc, parse_from, parse_to};

#[derive(Parser)]
#[command(
    name = "evidence-portal",
    version,
    about = "Online viewing of road-traffic accident evidence (交通事故证据材料网上查阅).",
    long_about = "Online viewing of road-traffic accident evidence (交通事故证据材料网上查阅).\n\n\
        With no subcommand the portal serves HTTP. Settings come from PORTAL_* environment \
        variables and an optional TOML file; see the README for the list."
)]
pub struct Cli {
    /// A TOML file of settings (keys as the PORTAL_* variables, lower case, without the prefix).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the portal over HTTP until SIGINT or SIGTERM (the default).
    Serve,
    /// Check that the database (and its schema), the object store, the audit log and the render
    /// font answer, each within 5 s, one line each; exit 0 only when all do (for monitors and
    /// timers). Reads only.
    Healthcheck,
    /// Apply pending database migrations, or show their status.
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Verify or export the access-audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Create accounts and issue access codes (the admin pages do the same).
    Account {
        #[command(subcommand)]
        action: AccountAction,
    },
    /// Seed a demo data set (brigade, staff, two parties, an agent, one served case with
    /// generated materials) and print its sign-ins; run again, it adds nothing and prints the
    /// sign-ins again. For trying the portal, never production.
    Demo,
    /// Back up the database (a consistent snapshot, while the portal serves), the objects not
    /// yet in the target, and the keys if a passphrase is given, with a signed manifest; or
    /// verify a backup (`backup verify BACKUP`).
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty installation (refuses one with accounts, cases or
    /// objects), verified first; the restore is recorded in the audit log and anchored.
    Restore(backup::RestoreArgs),
    /// List (and with --delete remove) stored objects no material references, older than an
    /// hour (uploads interrupted before their row was written), and the render cache's files
    /// beyond PORTAL_RENDER_CACHE_BYTES (0 empties it).
    Gc {
        /// Remove them (the default only lists).
        #[arg(long)]
        delete: bool,
        /// Leave objects younger than this alone: an upload may still be in flight.
        #[arg(long, default_value_t = 60)]
        min_age_minutes: i64,
    },
    /// Check a downloaded bundle (zip) offline with this installation's keys: its files against
    /// SHA256SUMS and SM3SUMS, its Ed25519 and SM2 signatures and its timestamp; says which
    /// algorithms were checked, exit 1 naming the first thing wrong.
    Verify {
        /// The bundle as downloaded.
        bundle: std::path::PathBuf,
    },
    /// Create an administrator account (the first admin of a new installation).
    CreateAdmin {
        /// Sign-in name: 3–32 of a-z 0-9 . _ -
        #[arg(long)]
        username: String,
        /// Name shown in pages and the audit log.
        #[arg(long = "name", value_name = "DISPLAY_NAME")]
        display_name: String,
        /// Read the password from the first line of standard input instead of prompting
        /// (implied when standard input is not a terminal).
        #[arg(long)]
        password_stdin: bool,
        /// Hours the new administrator may act before enrolling a second factor (0: enrol at
        /// the first sign-in, which they may do at once). At most 72.
        #[arg(long, default_value_t = 0)]
        second_factor_grace_hours: u16,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Walk the hash chain. Exit 0 with the number of events checked; exit 3 naming the first
    /// broken sequence number when a row was altered, removed, inserted or reordered.
    Verify,
    /// Write events to standard output, oldest first, streamed.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: crate::audit::export::Format,
        /// Events at or after this time: RFC 3339, or a date (YYYY-MM-DD, China Standard Time).
        #[arg(long, value_parser = parse_from)]
        from: Option<time::OffsetDateTime>,
        /// Events before this time (RFC 3339), or up to the end of this date (YYYY-MM-DD, CST).
        #[arg(long, value_parser = parse_to)]
        to: Option<time::OffsetDateTime>,
        /// Only events of this case: its id, or its case number (事故编号).
        #[arg(long = "case", value_name = "CASE")]
        case: Option<String>,
    },
}

#[derive(Subcommand, Clone, Copy)]
enum MigrateAction {
    /// Apply every pending migration (the default).
    Apply,
    /// List migrations and whether each has been applied.
    Status,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let system = actix_web::rt::System::new();
    let result = system.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => service::serve(settings).await,
            Command::Healthcheck => service::healthcheck(settings).await,
            Command::Migrate { action } => {
                service::migrate(settings, action.unwrap_or(MigrateAction::Apply)).await
            }
            Command::Audit { action } => audit(settings, action).await,
            Command::Account { action } => account(settings, action).await,
            Command::Demo => demo(settings).await,
            Command::Verify { bundle } => bundle_check::verify_bundle(&settings, &bundle),
            Command::Backup(args) => backup::backup(settings, args).await,
            Command::Restore(args) => backup::restore(settings, args).await,
            Command::Gc {
                delete,
                min_age_minutes,
            } => gc(settings, delete, min_age_minutes).await,
            Command::CreateAdmin {
                username,
                display_name,
                password_stdin,
                second_factor_grace_hours,
            } => {
                create_admin(
                    settings,
                    &username,
                    &display_name,
                    password_stdin,
                    second_factor_grace_hours,
                )
                .await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Broken(line)) => {
            eprintln!("error: {line}");
            ExitCode::from(3)
        }
        Err(Failure::Other(line)) => fail(line),
    }
}

/// How a command failed: a broken audit chain exits 3, anything else 1.
enum Failure {
    Broken(String),
    Other(String),
}

impl From<String> for Failure {
    fn from(line: String) -> Self {
        Failure::Other(line)
    }
}

fn fail(line: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {line}");
    ExitCode::FAILURE
}

async fn demo(settings: Settings) -> Result<(), Failure> {
    let public = settings.public_url.clone();
    let state = crate::startup::open_state(settings)
        .await
        .map_err(|e| e.to_string())?;
    let seeded = crate::demo::seed(&state).await.map_err(|e| e.to_string())?;
    let case = seeded.case;
    if seeded.fresh {
        println!("demo case {case} is ready; sign in at {public}login with:");
    } else {
        println!(
            "the demo data set is already there (brigade DEMO): nothing was added. Demo case {case}; sign in at {public}login with:"
        );
    }
    let sign_ins = crate::demo::sign_ins(&state)
        .await
        .map_err(|e| e.to_string())?;
    let mut staff_unchanged = false;
    for (index, (login, standing)) in sign_ins.iter().enumerate() {
        use crate::demo::SignIn;
        let how = match standing {
            SignIn::DemoPassword => {
                staff_unchanged |= index == 0;
                login.password.to_owned()
            }
            SignIn::Activated => "already activated — sign in with your password".to_owned(),
            SignIn::NewCode(code) => format!(
                "no password (reset since the demo was made): new access code {} for {public}activate, valid until {} (earlier codes revoked)",
                code.code,
                code.expires_at.date()
            ),
            SignIn::Disabled => "disabled by an administrator (re-enable it to sign in)".to_owned(),
            SignIn::Missing => "no such account any more".to_owned(),
        };
        println!("  {:<28} {:<22} {how}", login.who, login.identifier);
    }
    if staff_unchanged {
        println!(
            "  the staff member's second factor: add this key to an authenticator app (time-based, 6 digits, 30 s): {}",
            crate::auth::second_factor::base32(crate::demo::STAFF_TOTP_SECRET)
        );
    }
    Ok(())
}

/// The new administrator's sign-in name (normalised) and display name (trimmed), checked with
/// the grace period (72 hours at most).
fn checked_names<'a>(
    username: &str,
    display_name: &'a str,
    grace_hours: u16,
) -> Result<(String, &'a str), Failure> {
    if grace_hours > 72 {
        return Err(Failure::Other(
            "--second-factor-grace-hours is at most 72".into(),
        ));
    }
    let username =
        identifier::normalise_username(username).map_err(|e| Failure::Other(e.to_string()))?;
    let display_name = display_name.trim();
    if display_name.is_empty() || display_name.chars().count() > 100 {
        return Err(Failure::Other("--name must be 1 to 100 characters".into()));
    }
    Ok((username, display_name))
}

/// The new administrator's password, read from standard input (or asked twice on a terminal),
/// checked for strength against their names, and hashed.
async fn admin_password_hash(
    username: &str,
    display_name: &str,
    password_stdin: bool,
) -> Result<String, Failure> {
    let secret = if password_stdin || !std::io::stdin().is_terminal() {
        read_password_line()?
    } else {
        prompt_password_twice()?
    };
    password::check_strength(
        &secret,
        &[username, display_name],
        password::MIN_LENGTH_ADMIN,
    )
    .map_err(|e| format!("password refused: {e}"))?;
    Ok(tokio::task::spawn_blocking(move || password::hash(&secret))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot hash the password: {e}"))?)
}

async fn create_admin(
    settings: Settings,
    username: &str,
    display_name: &str,
    password_stdin: bool,
    grace_hours: u16,
) -> Result<(), Failure> {
    let (username, display_name) = checked_names(username, display_name, grace_hours)?;
    let hash = admin_password_hash(&username, display_name, password_stdin).await?;

    let state = crate::startup::open_state(settings)
        .await
        .map_err(|e| e.to_string())?;
    let login_key = identifier::Identifier::Username(username.clone()).login_key(&state.key);
    let id = uuid::Uuid::now_v7();
    // Audited before the row exists, so no account is ever unaccounted for; a failure after
    // this is recorded as such.
    let event = |outcome| {
        Event::new(Actor::SYSTEM, Action::AccountCreate, outcome).details(serde_json::json!({
            "account_id": id,
            "role": Role::Admin,
            "login": username,
            "via": "cli",
        }))
    };
    let exists = crate::db::accounts::find_by_login_key(&state.db, &login_key)
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    if exists {
        let refused = event(Outcome::Failed).details(serde_json::json!({
            "role": Role::Admin,
            "login": username,
            "via": "cli",
            "error": "exists",
        }));
        state
            .audit
            .record(refused)
            .await
            .map_err(|e| e.to_string())?;
        return Err(Failure::Other(format!(
            "an account with the sign-in name {username} already exists"
        )));
    }
    state
        .audit
        .record(event(Outcome::Allowed))
        .await
        .map_err(|e| e.to_string())?;
    let created = crate::db::accounts::create_admin(
        &state.db,
        crate::db::accounts::NewAdmin {
            id,
            login_key: &login_key,
            login_masked: &username,
            display_name,
            password_hash: &hash,
            second_factor_grace_until: (grace_hours > 0).then(|| {
                time::OffsetDateTime::now_utc() + time::Duration::hours(i64::from(grace_hours))
            }),
        },
    )
    .await;
    if let Err(e) = created {
        let _ = state
            .audit
            .record(event(Outcome::Failed).details(serde_json::json!({
                "account_id": id,
                "role": Role::Admin,
                "login": username,
                "via": "cli",
                "error": e.to_string(),
            })))
            .await;
        return Err(Failure::Other(e.to_string()));
    }
    println!("created admin {username} ({id})");
    if grace_hours > 0 {
        println!(
            "they may act without a second factor for {grace_hours} h; after that they must enrol one (an authenticator app) at /account/second-factor"
        );
    } else {
        println!("at the first sign-in they enrol a second factor (an authenticator app)");
    }
    Ok(())
}

fn read_password_line() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let secret = line.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        return Err("no password on standard input".into());
    }
    Ok(secret)
}

fn prompt_password_twice() -> Result<String, String> {
    let first = rpassword::prompt_password("Password for the new admin: ")
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let second = rpassword::prompt_password("Repeat the password: ")
        .map_err(|e| format!("cannot read the password: {e}"))?;
    if first != second {
        return Err("the two passwords differ".into());
    }
    Ok(first)
}
