//! `account …`: creating accounts and brigades, issuing access codes and resetting second
//! factors from the server's shell (the admin pages do the same).

use super::*;

#[derive(Subcommand)]
pub(super) enum AccountAction {
    /// Create an inactive account and print its first access code (valid 14 days).
    Create {
        /// party, agent or staff.
        #[arg(long, value_parser = account_role)]
        role: Role,
        /// Citizen ID number or passport number (party), lawyer licence or mobile number
        /// (agent), username (staff).
        #[arg(long)]
        identifier: String,
        /// The identifier of a foreign party is a passport number.
        #[arg(long)]
        passport: bool,
        #[arg(long = "name", value_name = "DISPLAY_NAME")]
        display_name: String,
        /// The brigade of a staff member, by its code.
        #[arg(long)]
        department: Option<String>,
    },
    /// Issue a new access code for an account (revoking its earlier ones) and print it.
    IssueCode {
        #[arg(long)]
        identifier: String,
        /// Why (recorded in the audit log, and shown to the person at their next sign-in).
        #[arg(long, default_value = "系统管理员在服务器上重新发放访问码")]
        reason: String,
    },
    /// Remove every second factor and recovery code of a staff member or administrator (their
    /// phone lost with their codes) and end their sessions; they enrol anew at the next sign-in.
    ResetSecondFactor {
        /// The sign-in name.
        #[arg(long)]
        username: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Create a brigade (department).
    CreateDepartment {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
    },
}

pub(super) async fn account(settings: Settings, action: AccountAction) -> Result<(), Failure> {
    use crate::accounts;
    let state = crate::startup::open_state(settings)
        .await
        .map_err(|e| e.to_string())?;
    match action {
        AccountAction::Create {
            role,
            identifier,
            passport,
            display_name,
            department,
        } => {
            create(
                &state,
                role,
                &identifier,
                passport,
                &display_name,
                department,
            )
            .await?
        }
        AccountAction::IssueCode { identifier, reason } => {
            let found = crate::auth::signin::find_account(&state.db, &state.key, &identifier)
                .await
                .map_err(|e| e.to_string())?
                .map_err(text)?;
            let (_, acc) = found.ok_or_else(|| "no account has this identifier".to_owned())?;
            let by = accounts::ResetBy {
                actor: Actor::SYSTEM,
                label: "系统管理员 (administrator)".into(),
                reason,
            };
            let (acc, code) = accounts::reset(
                &state.db,
                &state.key,
                &state.audit,
                state.channels,
                by,
                acc.id,
            )
            .await
            .map_err(|e| e.to_string())?;
            print_code(&acc.login_masked, code);
        }
        AccountAction::ResetSecondFactor { username, reason } => {
            reset_second_factor(&state, &username, &reason).await?
        }
        AccountAction::CreateDepartment { code, name } => {
            let dep = accounts::create_department(
                &state.db,
                &state.audit,
                Actor::SYSTEM,
                code.trim(),
                name.trim(),
            )
            .await
            .map_err(|e| e.to_string())?;
            println!("created brigade {} {} ({})", dep.code, dep.name, dep.id);
        }
    }
    Ok(())
}

/// `account create`: an inactive account of `role` (a staff member in the brigade of code
/// `department`), with its first access code printed.
async fn create(
    state: &crate::state::AppState,
    role: Role,
    identifier: &str,
    passport: bool,
    display_name: &str,
    department: Option<String>,
) -> Result<(), Failure> {
    use crate::accounts::{self, NewAccount};
    use crate::auth::identifier::Identifier;
    let ident = Identifier::for_role(role, identifier, passport).map_err(text)?;
    let department_id = match (role, department) {
        (Role::Staff, Some(code)) => Some(
            accounts::departments(&state.db)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .find(|d| d.code == code)
                .ok_or_else(|| format!("no brigade with the code {code}"))?
                .id,
        ),
        (Role::Staff, None) => {
            return Err(Failure::Other("--department is required for staff".into()));
        }
        _ => None,
    };
    let new = NewAccount {
        role,
        identifier: ident,
        display_name: display_name.trim().to_owned(),
        department_id,
    };
    let (acc, code) = accounts::create(&state.db, &state.key, &state.audit, Actor::SYSTEM, new)
        .await
        .map_err(|e| e.to_string())?;
    print_code(&acc.login_masked, code);
    Ok(())
}

/// `account reset-second-factor`: every second factor of an officer or administrator removed
/// and their sessions ended, audited first with the reason.
async fn reset_second_factor(
    state: &crate::state::AppState,
    username: &str,
    reason: &str,
) -> Result<(), Failure> {
    use crate::auth::identifier::{self as id, Identifier};
    let username = id::normalise_username(username).map_err(text)?;
    let key = Identifier::Username(username.clone()).login_key(&state.key);
    let acc = crate::db::accounts::find_by_login_key(&state.db, &key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no account has the sign-in name {username}"))?;
    if !crate::auth::second_factor::required(acc.role) {
        return Err(Failure::Other(
            "only officers and administrators have a second factor".into(),
        ));
    }
    let reason = reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(Failure::Other(
            "--reason must be 1 to 200 characters".into(),
        ));
    }
    state
        .audit
        .record(
            Event::new(Actor::SYSTEM, Action::SecondFactorReset, Outcome::Allowed).details(
                serde_json::json!({ "account_id": acc.id, "login": acc.login_masked, "by": "cli", "reason": reason }),
            ),
        )
        .await
        .map_err(|e| e.to_string())?;
    let removed = crate::auth::second_factor::reset(&state.db, acc.id)
        .await
        .map_err(|e| e.to_string())?;
    crate::auth::session::revoke_all(&state.db, acc.id, None)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "removed {removed} second factor(s) of {username}; at the next sign-in they enrol a new one"
    );
    Ok(())
}

/// An identifier refused, as the command says it.
fn text(e: crate::auth::identifier::IdError) -> Failure {
    Failure::Other(e.to_string())
}

/// Prints an access code with the end of its validity (UTC+8).
fn print_code(login: &str, code: crate::auth::access_code::IssuedCode) {
    let expires = code.expires_at.to_offset(CST);
    println!(
        "{login}  access code {}  valid until {} {:02}:{:02} (UTC+8)",
        code.code,
        expires.date(),
        expires.hour(),
        expires.minute()
    );
}

/// The roles `account create` makes (administrators have `create-admin`).
fn account_role(value: &str) -> Result<Role, String> {
    Role::parse(value)
        .filter(|r| *r != Role::Admin)
        .ok_or_else(|| {
            let roles: Vec<&str> = [Role::Party, Role::Agent, Role::Staff]
                .iter()
                .map(|r| r.as_str())
                .collect();
            format!("one of {}", roles.join(", "))
        })
}
