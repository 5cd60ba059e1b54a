//! The commands over what the portal keeps: the audit log (`audit verify`, `audit export`)
//! and the store's leftovers (`gc`), with the dates they take.

use super::*;

/// Which signatures of the newest checkpoint were checked (Ed25519, SM2).
fn print_checkpoint_signatures(algorithms: &[&str]) {
    if !algorithms.is_empty() {
        println!("checkpoint signatures checked: {}", algorithms.join(", "));
    }
}

pub(super) async fn audit(settings: Settings, action: AuditAction) -> Result<(), Failure> {
    let db = crate::db::connect(&settings.database_url, settings.db_timeout)
        .await
        .map_err(|e| {
            format!(
                "cannot open the database {}: {e}",
                settings.database_url.redacted()
            )
        })?;
    crate::db::upgrade::upgrade(&db, time::OffsetDateTime::now_utc())
        .await
        .map_err(|e| e.to_string())?;
    match action {
        AuditAction::Verify => {
            // The checkpoints live in the object store, signed with the manifest key.
            let state = crate::startup::open_state(settings)
                .await
                .map_err(|e| e.to_string())?;
            match crate::audit::verify::verify_anchored(&db, &state.store, &state.manifest_key)
                .await
            {
                Ok(a) => {
                    println!(
                        "verified {} events; head hash {}",
                        a.verified.events, a.verified.head_hash
                    );
                    if let Some(cp) = &a.checkpoint {
                        let before_restore =
                            if crate::audit::restored::explains(&a.restores, cp).is_some() {
                                " (of the history before the restore below)"
                            } else {
                                ""
                            };
                        println!(
                            "signed checkpoint: event {} hash {} at {}{before_restore}",
                            cp.seq,
                            cp.hash,
                            crate::i18n::Locale::Zh.time(cp.at)
                        );
                    }
                    print_checkpoint_signatures(&a.checkpoint_algorithms);
                    for restore in &a.restores {
                        println!("{restore}");
                    }
                    if let Some(problem) = &a.checkpoint_problem {
                        eprintln!("warning: {problem}");
                    }
                    Ok(())
                }
                Err(crate::audit::verify::VerifyError::Broken(b)) => {
                    Err(Failure::Broken(b.to_string()))
                }
                Err(e) => Err(Failure::Other(e.to_string())),
            }
        }
        AuditAction::Export {
            format,
            from,
            to,
            case,
        } => {
            let cases = match case {
                Some(case) => Some(
                    crate::db::cases::ids_matching(&db, &case)
                        .await
                        .map_err(|e| format!("cannot look up case {case}: {e}"))?,
                ),
                None => None,
            };
            let filter = crate::audit::export::Filter { from, to, cases };
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            let count = crate::audit::export::export(&db, &filter, format, out)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(events = count, "audit export written");
            Ok(())
        }
    }
}

pub(super) async fn gc(
    settings: Settings,
    delete: bool,
    min_age_minutes: i64,
) -> Result<(), Failure> {
    let state = crate::startup::open_state(settings)
        .await
        .map_err(|e| e.to_string())?;
    let orphans = crate::materials::collect_garbage(
        &state.db,
        &state.store,
        time::Duration::minutes(min_age_minutes.max(0)),
        delete,
    )
    .await
    .map_err(|e| e.to_string())?;
    let held = print_orphans(&orphans, delete);
    let cutoff = time::OffsetDateTime::now_utc() - time::Duration::minutes(min_age_minutes.max(0));
    let interrupted = interrupted_uploads(&state, cutoff, delete).await?;
    println!(
        "{} orphan object(s){}, {interrupted} interrupted upload(s){}",
        orphans.len(),
        if held > 0 {
            format!(" ({held} of them held for a refused application)")
        } else {
            String::new()
        },
        if delete || (orphans.is_empty() && interrupted == 0) {
            ""
        } else {
            "; run with --delete to remove them"
        }
    );
    // Copies naming their recipient (`PORTAL_WATERMARK_COPIES`) past their week, and any a
    // stopped process stored without recording.
    let copies = crate::copies::sweep(
        &state,
        time::Duration::minutes(min_age_minutes.max(0)),
        delete,
    )
    .await
    .map_err(|e| e.to_string())?;
    for (key, why) in &copies {
        println!(
            "{}  {key}  (a copy naming its recipient, {why})",
            if delete { "deleted" } else { why },
        );
    }
    // SM3 for materials recorded before issue 36 (serving instances also fill them at start).
    let filled = crate::materials::sm3::backfill(&state.db, &state.store, i64::MAX as u64)
        .await
        .map_err(|e| e.to_string())?;
    for (key, why) in &filled.failed {
        println!("no SM3  {key}  ({why})");
    }
    if filled.filled > 0 {
        println!("{} stored object(s) given their SM3", filled.filled);
    }
    // Personal data past its period (`retention`; serving instances also sweep hourly).
    super::service::retention(&state, delete).await?;
    super::render_cache::gc(&state.settings, delete).await
}

fn parse_time(value: &str, end_of_day: bool) -> Result<time::OffsetDateTime, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t);
    }
    let date = time::Date::parse(
        value,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| format!("{value:?} is neither RFC 3339 nor YYYY-MM-DD"))?;
    Ok(if end_of_day {
        crate::db::times::cst_day_end(date)
    } else {
        crate::db::times::cst_day_start(date)
    })
}

pub(super) fn parse_from(value: &str) -> Result<time::OffsetDateTime, String> {
    parse_time(value, false)
}

pub(super) fn parse_to(value: &str) -> Result<time::OffsetDateTime, String> {
    parse_time(value, true)
}

/// Prints each orphan object (deleted, or found); the number of them held for a refused
/// application.
fn print_orphans(orphans: &[crate::materials::Orphan], delete: bool) -> usize {
    // Proofs of refused access applications held for the applicant's next try (the public
    // form's `held`): orphans like any other once no application was filed with them, named
    // apart so that an administrator knows what they were.
    let is_held = |key: &str| crate::applications::access::held::is_held_key(key);
    for o in orphans {
        if is_held(&o.key) {
            println!(
                "{}  {}  {}  (a proof held for a refused application)",
                if delete { "deleted" } else { "held" },
                o.modified,
                o.key
            );
        } else {
            println!(
                "{}  {}  {}",
                if delete { "deleted" } else { "orphan" },
                o.modified,
                o.key
            );
        }
    }
    orphans.iter().filter(|o| is_held(&o.key)).count()
}

/// Prints and counts the uploads interrupted before `cutoff`: staged files and incomplete
/// multipart uploads (removed with `delete`).
async fn interrupted_uploads(
    state: &crate::state::AppState,
    cutoff: time::OffsetDateTime,
    delete: bool,
) -> Result<usize, Failure> {
    let staging = state
        .store
        .staging_leftovers(cutoff, delete)
        .await
        .map_err(|e| e.to_string())?;
    for (path, modified, size) in &staging {
        println!(
            "{}  {modified}  {path}  ({size} bytes of an interrupted upload)",
            if delete { "deleted" } else { "staging" },
        );
    }
    let abandoned = state
        .store
        .abandoned_uploads(cutoff, delete)
        .await
        .map_err(|e| e.to_string())?;
    for (path, modified) in &abandoned {
        println!(
            "{}  {modified}  {path}  (an incomplete multipart upload)",
            if delete { "aborted" } else { "multipart" },
        );
    }
    Ok(staging.len() + abandoned.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gc`'s default minimum age outlasts a hold: the default `gc` never takes a proof that a
    /// refused applicant's page may still use.
    #[test]
    fn the_default_gc_leaves_a_held_proof_alone_while_it_is_held() {
        let Ok(Cli {
            command: Some(Command::Gc {
                min_age_minutes, ..
            }),
            ..
        }) = Cli::try_parse_from(["evidence-portal", "gc"])
        else {
            panic!("gc parses");
        };
        assert!(min_age_minutes > crate::applications::access::held::HOLD_MINUTES);
    }
}
