//! `evidence-portal demo`: a brigade, a staff member, two parties, an agent with a delegation,
//! and one served case with generated materials — a scene diagram (PNG), a survey record and an
//! expert opinion (PDFs with Chinese text) — all made by the program, through the same domain
//! functions the pages use, so the demo is audited like real work.

use std::io::Write;

use sea_orm::EntityTrait;
use time::OffsetDateTime;

use crate::accounts::{self, NewAccount};
use crate::audit::Actor;
use crate::auth::access_code::{self, IssuedCode};
use crate::auth::identifier::Identifier;
use crate::auth::password;
use crate::cases::{self, CaseDetails, NewDelegation, NewParty, StatusChange};
use crate::materials::{self, Decision};
use crate::policy::{self, CaseAction};
use crate::state::AppState;
use crate::vocab::{CaseStatus, PartyRole, Role, ServiceKind};

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
async fn reissue(
    state: &AppState,
    account: &crate::db::entities::account::Model,
) -> DemoResult<IssuedCode> {
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

/// Makes the demo data set: the brigade, its officer, the case and its people, materials,
/// decisions and a waiting application.
async fn seed_new(state: &AppState) -> DemoResult<()> {
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
        system.clone(),
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
    let staff = crate::db::entities::account::Entity::find_by_id(staff.id)
        .one(&state.db)
        .await?
        .ok_or("staff vanished")?;

    let case = cases::create(
        &state.db,
        &state.audit,
        &staff,
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
    let facts = |case: crate::db::entities::case::Model| policy::CaseFacts {
        case,
        party: None,
        delegations: Vec::new(),
        grants: Vec::new(),
    };
    let permit = policy::decide(
        &staff,
        CaseAction::Manage,
        &facts(case.clone()),
        OffsetDateTime::now_utc(),
    )
    .map_err(|d| format!("policy refused the demo staff: {}", d.reason))?;

    let mut party_ids = Vec::new();
    for (label, name, id, login) in [
        ("甲", "张伟", LOGINS[1].identifier, &LOGINS[1]),
        ("乙", "李娜", LOGINS[2].identifier, &LOGINS[2]),
    ] {
        let (row, account, _) = cases::register_party(
            &state.db,
            &state.key,
            &state.audit,
            &staff,
            &permit,
            &case,
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

    let files: [(&str, &str, &str, Vec<u8>); 4] = [
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
    ];
    let mut ids = Vec::new();
    for (kind, title, name, bytes) in files {
        let received = store_bytes(state, case.id, name, bytes).await?;
        let (m, _) = materials::upload(
            &state.db,
            &state.audit,
            &staff,
            &permit,
            &received,
            kind,
            title,
            None,
        )
        .await?;
        ids.push(m.id);
    }
    for id in &ids[..3] {
        materials::decide(
            &state.db,
            &state.audit,
            crate::notifications::Channels::INBOX_ONLY,
            &staff,
            &permit,
            *id,
            Decision::Release,
        )
        .await?;
    }
    materials::decide(
        &state.db,
        &state.audit,
        crate::notifications::Channels::INBOX_ONLY,
        &staff,
        &permit,
        ids[3],
        Decision::Withhold {
            ground: "witness_confidentiality".into(),
            note: "证人要求对其身份保密（演示）".into(),
        },
    )
    .await?;

    let authorisation = store_bytes(
        state,
        case.id,
        "授权委托书.pdf",
        pdf(&["授权委托书", "委托人：张伟（当事人甲）", "受托人：赵律师"]),
    )
    .await?;
    let today = OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let (_, agent, _) = cases::grant_delegation(
        &state.db,
        &state.key,
        &state.audit,
        crate::notifications::Channels::INBOX_ONLY,
        &staff,
        &permit,
        &case,
        NewDelegation {
            principal_party_id: party_ids[0],
            agent: Identifier::Mobile(LOGINS[3].identifier.into()),
            agent_name: "赵律师".into(),
            law_firm: Some("演示律师事务所".into()),
            valid_from: today,
            valid_until: today.checked_add(time::Duration::days(90)).unwrap_or(today),
        },
        &authorisation,
    )
    .await?;
    set_password(state, agent.id, LOGINS[3].password).await?;
    let (case_id, department_id, case_number) =
        (case.id, case.department_id, case.case_number.clone());
    cases::change_status(
        &state.db,
        &state.audit,
        crate::notifications::Channels::INBOX_ONLY,
        &staff,
        &permit,
        case,
        StatusChange {
            to: CaseStatus::Served.as_str().into(),
            service_kind: Some(ServiceKind::Determination.as_str().into()),
            served_on: Some(today),
        },
    )
    .await?;
    // An insurer's application to query the case, waiting in the officer's queue.
    let application = crate::applications::access::NewAccess {
        kind: "insurer".into(),
        brigade: department_id.to_string(),
        case_number,
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
        case_id,
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

async fn set_password(
    state: &AppState,
    account_id: uuid::Uuid,
    secret: &'static str,
) -> DemoResult<()> {
    use sea_orm::{ActiveModelTrait, Set};
    let hash = tokio::task::spawn_blocking(move || password::hash(secret))
        .await?
        .map_err(|e| e.to_string())?;
    let account = crate::db::entities::account::Entity::find_by_id(account_id)
        .one(&state.db)
        .await?
        .ok_or("no account")?;
    let mut row: crate::db::entities::account::ActiveModel = account.into();
    row.password_hash = Set(Some(hash));
    row.update(&state.db).await?;
    Ok(())
}

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

/// A 640×420 scene diagram: two roads crossing, a car and an e-bike, drawn pixel by pixel.
fn scene_diagram_png() -> Vec<u8> {
    let (w, h) = (640usize, 420usize);
    let mut px = vec![[245u8, 245, 240]; w * h];
    let mut fill = |x0: usize, y0: usize, x1: usize, y1: usize, c: [u8; 3]| {
        for y in y0..y1.min(h) {
            for x in x0..x1.min(w) {
                px[y * w + x] = c;
            }
        }
    };
    fill(0, 170, w, 250, [90, 90, 95]); // east-west road
    fill(280, 0, 360, h, [90, 90, 95]); // north-south road
    for x in (0..w).step_by(40) {
        fill(x, 208, x + 20, 212, [250, 250, 250]); // lane marks
    }
    for y in (0..h).step_by(40) {
        fill(318, y, 322, y + 20, [250, 250, 250]);
    }
    for i in 0..6 {
        fill(262 - i * 10, 160, 268 - i * 10, 260, [255, 255, 255]); // crossing stripes
    }
    fill(300, 120, 340, 190, [30, 80, 170]); // car, heading north
    fill(370, 215, 420, 230, [200, 40, 40]); // e-bike, fallen
    fill(425, 205, 440, 240, [200, 40, 40]);
    let mut raw = Vec::with_capacity((w * 3 + 1) * h);
    for y in 0..h {
        raw.push(0u8);
        for x in 0..w {
            raw.extend_from_slice(&px[y * w + x]);
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = z.write_all(&raw);
    let idat = z.finish().unwrap_or_default();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&crc.finalize().to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(w as u32).to_be_bytes());
    ihdr.extend_from_slice(&(h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &idat);
    chunk(b"IEND", &[]);
    png
}

/// A one-page A4 PDF of `lines` in Chinese, using the standard Adobe-GB1 font STSong-Light
/// (UniGB-UCS2-H encoding): readers substitute their own CJK font, so nothing is embedded.
/// Public for the browser journeys, which upload such documents too.
pub fn pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 16 Tf 20 TL 72 770 Td\n");
    for line in lines {
        let hex: String = line.encode_utf16().map(|u| format!("{u:04X}")).collect();
        content.push_str(&format!("<{hex}> Tj T*\n"));
    }
    content.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [6 0 R] >>".to_owned(),
        "<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> /FontDescriptor 7 0 R >>".to_owned(),
        "<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer << /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_are_what_they_claim() {
        assert_eq!(
            infer::get(&scene_diagram_png()).map(|t| t.mime_type()),
            Some("image/png")
        );
        let p = pdf(&["现场勘查笔录"]);
        assert_eq!(
            infer::get(&p).map(|t| t.mime_type()),
            Some("application/pdf")
        );
        // 现 is U+73B0.
        assert!(String::from_utf8_lossy(&p).contains("<73B0"));
    }
}
