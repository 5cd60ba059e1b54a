//! `evidence-portal demo`: a brigade, a staff member, two parties, an agent with a delegation,
//! and one served case with generated materials — a scene diagram (PNG), a survey record and an
//! expert opinion (PDFs with Chinese text) — all made by the program, through the same domain
//! functions the pages use, so the demo is audited like real work. `seed` runs its named steps
//! in order (see `seed_new`); the generated documents are drawn in `files.rs`.

use sea_orm::EntityTrait;
use time::OffsetDateTime;

use crate::accounts::{self, NewAccount};
use crate::audit::Actor;
use crate::auth::access_code::{self, IssuedCode};
use crate::auth::identifier::Identifier;
use crate::auth::password;
use crate::cases::{self, CaseDetails, NewDelegation, NewParty, StatusChange};
use crate::db::entities::{account, case};
use crate::materials::{self, Decision};
use crate::policy::{self, CaseAction};
use crate::state::AppState;
use crate::vocab::{CaseStatus, PartyRole, Role, ServiceKind};

mod files;

pub use files::pdf;
use files::scene_diagram_png;

/// The sign-ins the demo prints (demo passwords, for trying the portal only).
pub struct DemoLogin {
    pub who: &'static str,
    pub identifier: &'static str,
    pub password: &'static str,
}

pub const LOGINS: [DemoLogin; 4] = [
    DemoLogin {
        who: "民警 staff (王立)",
        identifier: "demo.wangli",
        password: "Demo-Staff-河桥-2026",
    },
    DemoLogin {
        who: "当事人甲 party A (张伟)",
        identifier: "110101199003070011",
        password: "Demo-Party-甲-2026",
    },
    DemoLogin {
        who: "当事人乙 party B (李娜)",
        identifier: "440304198511223338",
        password: "Demo-Party-乙-2026",
    },
    DemoLogin {
        who: "代理人 agent (赵律师)",
        identifier: "13912345678",
        password: "Demo-Agent-律-2026",
    },
];

/// The demo officer's authenticator-app key (20 bytes; `demo` prints it in base32 to add to an
/// app). For trying the portal only.
pub const STAFF_TOTP_SECRET: &[u8; 20] = b"demo-officer-totp-01";

type DemoResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The demo case's number.
pub const CASE_NUMBER: &str = "演示[2026]第00001号";

/// What `seed` found or made.
pub struct Seeded {
    /// The demo case's number.
    pub case: String,
    /// Whether this run made the data set (false: it was already there and nothing was added).
    pub fresh: bool,
}

/// Seeds the demo data set, once: if the demo brigade already exists nothing is added, so the
/// command is safe to run again (it then only prints the sign-ins, see [`sign_ins`]).
pub async fn seed(state: &AppState) -> DemoResult<Seeded> {
    let there = accounts::departments(&state.db)
        .await?
        .iter()
        .any(|d| d.code == "DEMO");
    if !there {
        seed_new(state).await?;
    }
    Ok(Seeded {
        case: CASE_NUMBER.into(),
        fresh: !there,
    })
}

/// How one demo sign-in stands now.
pub enum SignIn {
    /// The demo password still opens the account.
    DemoPassword,
    /// The person chose a password of their own, which is never printed.
    Activated,
    /// The account has no password (it was reset since the demo was seeded): a new access code,
    /// which revoked the earlier unused ones; issued by the system and audited.
    NewCode(IssuedCode),
    /// An administrator disabled the account; no code is issued for it.
    Disabled,
    /// The account is not there (the demo data set was changed by hand).
    Missing,
}

/// The demo accounts' identifiers, in the order of [`LOGINS`].
fn identifier_of(index: usize, login: &DemoLogin) -> Identifier {
    match index {
        0 => Identifier::Username(login.identifier.into()),
        3 => Identifier::Mobile(login.identifier.into()),
        _ => Identifier::CitizenId(login.identifier.into()),
    }
}

/// Where each demo sign-in stands, for printing. Passwords are checked, never read back: a demo
/// password is printed only while it still opens its account.
pub async fn sign_ins(state: &AppState) -> DemoResult<Vec<(&'static DemoLogin, SignIn)>> {
    let mut out = Vec::new();
    for (index, login) in LOGINS.iter().enumerate() {
        let login_key = identifier_of(index, login).login_key(&state.key);
        let Some(account) = crate::db::accounts::find_by_login_key(&state.db, &login_key).await?
        else {
            out.push((login, SignIn::Missing));
            continue;
        };
        let standing = if account.disabled {
            SignIn::Disabled
        } else if let Some(stored) = account.password_hash.clone() {
            let demo = login.password;
            let same = tokio::task::spawn_blocking(move || password::verify(demo, &stored)).await?;
            if same {
                SignIn::DemoPassword
            } else {
                SignIn::Activated
            }
        } else {
            SignIn::NewCode(reissue(state, &account).await?)
        };
        out.push((login, standing));
    }
    Ok(out)
}

/// A new access code for a demo account that has none usable: audited first, like every code.
async fn reissue(state: &AppState, account: &account::Model) -> DemoResult<IssuedCode> {
    use crate::audit::{Action, Event, Outcome};
    use sea_orm::TransactionTrait;
    state
        .audit
        .record(
            Event::new(Actor::SYSTEM, Action::AccessCodeIssue, Outcome::Allowed).details(
                serde_json::json!({ "account_id": account.id, "login": account.login_masked, "by": "demo" }),
            ),
        )
        .await?;
    let txn = state.db.begin().await?;
    let code = access_code::issue(&txn, &state.key, account.id, None).await?;
    txn.commit().await?;
    Ok(code)
}

/// Makes the demo data set, step by step, in this order (each step audited like real work).
async fn seed_new(state: &AppState) -> DemoResult<()> {
    let staff = brigade_and_officer(state).await?;
    let (case, permit) = open_case(state, &staff).await?;
    let party_ids = register_parties(state, &staff, &permit, &case).await?;
    upload_and_decide(state, &staff, &permit, &case).await?;
    let today = OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    delegate_agent(state, &staff, &permit, &case, party_ids[0], today).await?;
    let case = serve(state, &staff, &permit, case, today).await?;
    file_insurer_application(state, &case).await
}

/// The demo brigade and its officer (password, authenticator app), read back as stored.
async fn brigade_and_officer(state: &AppState) -> DemoResult<account::Model> {
    let system = Actor::SYSTEM;
    let dep = accounts::create_department(
        &state.db,
        &state.audit,
        system.clone(),
        "DEMO",
        "演示交警大队",
    )
    .await?;
    let (staff, _) = accounts::create(
        &state.db,
        &state.key,
        &state.audit,
        system,
        NewAccount {
            role: Role::Staff,
            identifier: Identifier::Username(LOGINS[0].identifier.into()),
            display_name: "王立".into(),
            department_id: Some(dep.id),
        },
    )
    .await?;
    set_password(state, staff.id, LOGINS[0].password).await?;
    crate::auth::second_factor::enrol_known(
        &state.db,
        &state.key,
        staff.id,
        STAFF_TOTP_SECRET,
        "演示验证器 (demo app)",
        OffsetDateTime::now_utc(),
    )
    .await?;
    let staff = account::Entity::find_by_id(staff.id)
        .one(&state.db)
        .await?
        .ok_or("staff vanished")?;
    Ok(staff)
}

/// The demo case, opened by the officer, and the officer's permit to manage it.
async fn open_case(
    state: &AppState,
    staff: &account::Model,
) -> DemoResult<(case::Model, policy::CasePermit)> {
    let case = cases::create(
        &state.db,
        &state.audit,
        staff,
        CaseDetails {
            case_number: CASE_NUMBER.into(),
            occurred_at: OffsetDateTime::now_utc() - time::Duration::days(10),
            place: "建国路与东三环交叉口".into(),
            summary: "小型轿车与电动自行车在路口相撞，电动自行车驾驶人受伤。".into(),
            fatal: false,
            complex: true,
        },
    )
    .await?;
    let facts = policy::CaseFacts {
        case: case.clone(),
        party: None,
        delegations: Vec::new(),
        grants: Vec::new(),
    };
    let permit = policy::decide(staff, CaseAction::Manage, &facts, OffsetDateTime::now_utc())
        .map_err(|d| format!("policy refused the demo staff: {}", d.reason))?;
    Ok((case, permit))
}

/// The two parties, 甲 and 乙, registered with their demo passwords; their party rows' ids.
async fn register_parties(
    state: &AppState,
    staff: &account::Model,
    permit: &policy::CasePermit,
    case: &case::Model,
) -> DemoResult<Vec<uuid::Uuid>> {
    let mut party_ids = Vec::new();
    for (label, name, id, login) in [
        ("甲", "张伟", LOGINS[1].identifier, &LOGINS[1]),
        ("乙", "李娜", LOGINS[2].identifier, &LOGINS[2]),
    ] {
        let (row, account, _) = cases::register_party(
            &state.db,
            &state.key,
            &state.audit,
            staff,
            permit,
            case,
            NewParty {
                name: name.into(),
                identifier: Identifier::CitizenId(id.into()),
                mobile: None,
                label: label.into(),
                role: PartyRole::Driver.as_str().into(),
            },
        )
        .await?;
        set_password(state, account.id, login.password).await?;
        party_ids.push(row.id);
    }
    Ok(party_ids)
}

/// The case's four materials (kind, title, file name, bytes): the first three are released,
/// the last, a witness statement, is withheld.
fn materials_of_the_case() -> [(&'static str, &'static str, &'static str, Vec<u8>); 4] {
    [
        ("scene_diagram", "现场图", "现场图.png", scene_diagram_png()),
        (
            "survey_record",
            "现场勘查笔录",
            "勘查笔录.pdf",
            pdf(&[
                "道路交通事故现场勘查笔录",
                "勘查时间：2026年11月14日 09时20分",
                "勘查地点：建国路与东三环交叉口",
                "天气：晴  路面：沥青、干燥",
                "小型轿车停于路口东侧，车头朝北。",
                "电动自行车倒地于人行横道北侧。",
            ]),
        ),
        (
            "expert_opinion",
            "车速鉴定意见",
            "鉴定意见.pdf",
            pdf(&[
                "司法鉴定意见书",
                "鉴定事项：事故发生时小型轿车的行驶速度",
                "鉴定意见：约为每小时 42 公里至 46 公里。",
            ]),
        ),
        (
            "other",
            "证人证言（证人要求保密）",
            "证人证言.pdf",
            pdf(&["证人证言", "（证人要求保密）"]),
        ),
    ]
}

/// Uploads the case's materials, releases the first three and withholds the witness statement.
async fn upload_and_decide(
    state: &AppState,
    staff: &account::Model,
    permit: &policy::CasePermit,
    case: &case::Model,
) -> DemoResult<()> {
    let mut ids = Vec::new();
    for (kind, title, name, bytes) in materials_of_the_case() {
        let received = store_bytes(state, case.id, name, bytes).await?;
        let (m, _) = materials::upload(
            &state.db,
            &state.audit,
            staff,
            permit,
            &received,
            kind,
            title,
            None,
            (None, None),
        )
        .await?;
        ids.push(m.id);
    }
    let withheld = Decision::Withhold {
        ground: "witness_confidentiality".into(),
        note: "证人要求对其身份保密（演示）".into(),
    };
    let decisions = ids[..3]
        .iter()
        .map(|id| (*id, Decision::Release))
        .chain([(ids[3], withheld)]);
    for (id, decision) in decisions {
        materials::decide(
            &state.db,
            &state.audit,
            crate::notifications::Channels::INBOX_ONLY,
            staff,
            permit,
            id,
            decision,
        )
        .await?;
    }
    Ok(())
}

/// Party 甲's agent, a lawyer, delegated for 90 days from `today` on a signed authorisation,
/// with the demo password.
async fn delegate_agent(
    state: &AppState,
    staff: &account::Model,
    permit: &policy::CasePermit,
    case: &case::Model,
    principal_party_id: uuid::Uuid,
    today: time::Date,
) -> DemoResult<()> {
    let authorisation = store_bytes(
        state,
        case.id,
        "授权委托书.pdf",
        pdf(&["授权委托书", "委托人：张伟（当事人甲）", "受托人：赵律师"]),
    )
    .await?;
    let (_, agent, _) = cases::grant_delegation(
        &state.db,
        &state.key,
        &state.audit,
        crate::notifications::Channels::INBOX_ONLY,
        staff,
        permit,
        case,
        NewDelegation {
            principal_party_id,
            agent: Identifier::Mobile(LOGINS[3].identifier.into()),
            agent_name: "赵律师".into(),
            law_firm: Some("演示律师事务所".into()),
            valid_from: today,
            valid_until: today.checked_add(time::Duration::days(90)).unwrap_or(today),
        },
        &authorisation,
    )
    .await?;
    set_password(state, agent.id, LOGINS[3].password).await
}

/// The served state: the determination served `today`, which opens the review period; the
/// case as it now stands.
async fn serve(
    state: &AppState,
    staff: &account::Model,
    permit: &policy::CasePermit,
    case: case::Model,
    today: time::Date,
) -> DemoResult<case::Model> {
    let served = cases::change_status(
        &state.db,
        &state.audit,
        crate::notifications::Channels::INBOX_ONLY,
        staff,
        permit,
        case,
        StatusChange {
            to: CaseStatus::Served.as_str().into(),
            service_kind: Some(ServiceKind::Determination.as_str().into()),
            served_on: Some(today),
        },
    )
    .await?;
    Ok(served)
}

/// An insurer's application to query the case, with its proof, waiting in the officer's queue.
async fn file_insurer_application(state: &AppState, case: &case::Model) -> DemoResult<()> {
    let application = crate::applications::access::NewAccess {
        kind: "insurer".into(),
        brigade: case.department_id.to_string(),
        case_number: case.case_number.clone(),
        applicant_name: "李明".into(),
        organisation: "演示财产保险股份有限公司".into(),
        credit_code: "91110000710931141J".into(),
        plate: "京A12345".into(),
        policy_no: "PDAA202611000001".into(),
        mobile: "13700001111".into(),
        email: String::new(),
    };
    let checked = crate::applications::access::check(&state.db, &application)
        .await
        .map_err(|e| e.to_string())?;
    let proof = store_bytes(
        state,
        case.id,
        "查询授权书.pdf",
        pdf(&[
            "查询授权书",
            "演示财产保险股份有限公司",
            "授权李明查询事故材料",
        ]),
    )
    .await?;
    crate::applications::access::file(
        &state.db,
        &state.audit,
        &state.key,
        checked,
        &proof,
        (None, None),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Sets a demo account's password (hashed off the async threads).
async fn set_password(
    state: &AppState,
    account_id: uuid::Uuid,
    secret: &'static str,
) -> DemoResult<()> {
    use sea_orm::{ActiveModelTrait, Set};
    let hash = tokio::task::spawn_blocking(move || password::hash(secret))
        .await?
        .map_err(|e| e.to_string())?;
    let account = account::Entity::find_by_id(account_id)
        .one(&state.db)
        .await?
        .ok_or("no account")?;
    let mut row: account::ActiveModel = account.into();
    row.password_hash = Set(Some(hash));
    row.update(&state.db).await?;
    Ok(())
}

/// Puts a generated file into the store under a new material id, as an upload would arrive.
async fn store_bytes(
    state: &AppState,
    case_id: uuid::Uuid,
    name: &str,
    bytes: Vec<u8>,
) -> DemoResult<materials::Received> {
    let content_type = infer::get(&bytes)
        .map(|t| t.mime_type())
        .ok_or("generated file of unknown type")?;
    let material_id = uuid::Uuid::now_v7();
    let key = crate::store::ObjectKey::material(case_id, material_id);
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))]);
    let stored = state.store.put_stream(&key, body, u64::MAX).await?;
    Ok(materials::Received {
        material_id,
        key,
        stored,
        content_type,
        original_name: name.to_owned(),
    })
}
