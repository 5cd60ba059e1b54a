//! The staff case page's section builders, each on its own, and its list of links.

use super::*;
use time::Duration;

fn at(days: i64) -> OffsetDateTime {
    time::macros::datetime!(2026-11-20 10:00 +8) + Duration::days(days)
}

fn a_case() -> case::Model {
    case::Model {
        id: Uuid::now_v7(),
        department_id: Uuid::now_v7(),
        case_number: "2026-1".into(),
        occurred_at: at(-10),
        place: "建国路".into(),
        summary: String::new(),
        fatal: false,
        complex: true,
        status: CaseStatus::Investigating,
        service_kind: None,
        served_on: None,
        created_by: Uuid::now_v7(),
        created_at: at(-10),
        updated_at: at(-10),
        status_changed_by: None,
        status_changed_at: None,
    }
}

fn a_party(case: &case::Model, label: &str, name: &str) -> case_party::Model {
    case_party::Model {
        id: Uuid::now_v7(),
        case_id: case.id,
        account_id: Uuid::now_v7(),
        label: label.into(),
        role: PartyRole::Driver,
        name: name.into(),
        created_by: case.created_by,
        created_at: at(-9),
        mobile: None,
    }
}

fn a_delegation(principal: Uuid, from: i64, until: i64, revoked: bool) -> delegation::Model {
    delegation::Model {
        id: Uuid::now_v7(),
        case_id: Uuid::now_v7(),
        principal_party_id: principal,
        agent_account_id: Uuid::now_v7(),
        valid_from: at(from),
        valid_until: at(until),
        revoked_at: revoked.then(|| at(-1)),
        revoked_by: None,
        authorisation_material_id: None,
        created_by: Uuid::now_v7(),
        created_at: at(from),
        law_firm: Some("演示律师事务所".into()),
    }
}

fn a_material(kind: MaterialKind, state: MaterialState) -> material::Model {
    material::Model {
        id: Uuid::now_v7(),
        case_id: Uuid::now_v7(),
        kind,
        title: "现场图".into(),
        original_name: "a.png".into(),
        content_type: "image/png".into(),
        size: 2048,
        sha256: String::new(),
        crc32: 0,
        object_key: String::new(),
        state,
        withhold_ground: None,
        withhold_note: None,
        uploaded_by: Uuid::now_v7(),
        uploaded_at: at(-5),
        decided_by: None,
        decided_at: None,
        superseded_by: None,
        sm3: None,
        proves: None,
    }
}

/// The agents section on its own: where each delegation stands at one instant, which may be
/// revoked, and whose agent it is.
#[test]
fn the_agents_section_says_where_each_delegation_stands() {
    let case = a_case();
    let party = a_party(&case, "甲", "张伟");
    let parties = vec![(party.clone(), None)];
    let delegations = vec![
        (a_delegation(party.id, -3, 30, false), None),
        (a_delegation(party.id, 2, 30, false), None),
        (a_delegation(party.id, -30, -1, false), None),
        (a_delegation(party.id, -3, 30, true), None),
        (a_delegation(Uuid::now_v7(), -3, 30, false), None),
    ];
    let rows = agents_section(delegations, &parties, at(0));
    let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(
        states,
        [
            t("staff.agents.current"),
            t("staff.agents.not_started"),
            t("staff.agents.expired"),
            t("staff.agents.revoked"),
            t("staff.agents.current"),
        ]
    );
    let revocable: Vec<bool> = rows.iter().map(|r| r.revocable).collect();
    assert_eq!(revocable, [true, true, false, false, true]);
    assert!(rows[0].principal.contains("甲") && rows[0].principal.contains("张伟"));
    assert_eq!(rows[4].principal, "", "a principal not among the parties");
    assert_eq!(rows[0].law_firm, "演示律师事务所");
    assert!(
        rows[0]
            .period
            .contains(&Locale::current().date(at(-3).date()))
    );
}

/// The evidence section on its own: each material's state as shown, and which may still be
/// released or withheld.
#[test]
fn the_materials_section_shows_states_and_what_may_be_decided() {
    let released = a_material(MaterialKind::SceneDiagram, MaterialState::Released);
    let mut withheld = a_material(MaterialKind::Other, MaterialState::Withheld);
    withheld.withhold_ground = Some(WithholdGround::WitnessConfidentiality);
    let mut superseded = a_material(MaterialKind::SurveyRecord, MaterialState::Draft);
    superseded.superseded_by = Some(released.id);
    let internal = a_material(MaterialKind::Authorisation, MaterialState::Draft);
    let section = materials_section(vec![released, withheld, superseded, internal]);
    let rows = &section.rows;
    assert_eq!(
        rows[0].state,
        Locale::current().label(MaterialState::Released)
    );
    assert!(rows[0].released && rows[0].decidable);
    assert_eq!(rows[0].size, "2 KB");
    let ground = Locale::current().label(WithholdGround::WitnessConfidentiality);
    assert!(rows[1].state.contains(ground.as_str()), "{}", rows[1].state);
    assert!(rows[1].decidable && !rows[1].released);
    assert_eq!(rows[2].state, t("staff.materials.superseded"));
    assert!(
        !rows[2].decidable,
        "a superseded material is not decided again"
    );
    assert_eq!(rows[3].state, t("staff.materials.internal"));
    assert!(!rows[3].decidable, "an internal document is never released");
    assert_eq!(section.kinds.len(), MaterialKind::EVIDENCE.len());
}

/// The facts and progress sections on their own: the case's type, and disclosure offered
/// only to a fatal or complex case under investigation.
#[test]
fn the_facts_and_progress_sections_follow_the_case() {
    let mut case = a_case();
    assert_eq!(facts(&case).case_type, t("staff.case.type_complex"));
    assert!(facts(&case).served.is_none());
    assert!(progress(&case).can_disclose);
    case.complex = false;
    assert_eq!(facts(&case).case_type, t("staff.case.type_ordinary"));
    assert!(!progress(&case).can_disclose);
    case.fatal = true;
    case.status = CaseStatus::Served;
    case.service_kind = Some(ServiceKind::Determination);
    case.served_on = Some(at(0).date());
    assert!(!progress(&case).can_disclose);
    let served = facts(&case).served.unwrap_or_default();
    assert!(served.contains(&*t("staff.case.determination")), "{served}");
}

/// The page's list of links near its top: every link leads to a section of the page, and
/// every section but the facts (just below it) has a link.
#[test]
fn the_page_links_to_each_of_its_sections() {
    let case = a_case();
    let page = CasePage {
        layout: Layout::new(),
        csrf_token: "token".into(),
        error: None,
        today: "2026-11-20".into(),
        typed: Typed::default(),
        facts: facts(&case),
        progress: progress(&case),
        timeline: timeline_section(&[]),
        parties: parties_section(Vec::new()),
        delegations: Vec::new(),
        vehicles: Vec::new(),
        materials: materials_section(Vec::new()),
        applications: applications::CaseApplications::default(),
        notices: Vec::new(),
        case,
    };
    let html = page.render().unwrap_or_default();
    let label = format!("aria-label=\"{}\"", t("staff.case.sections"));
    let start = html
        .find(&label)
        .unwrap_or_else(|| panic!("no nav: {html}"));
    let nav = &html[start..start + html[start..].find("</nav>").unwrap_or(0)];
    let links: Vec<&str> = nav
        .split("href=\"#")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert!(links.len() >= 9, "{links:?}");
    for anchor in &links {
        assert!(
            html.contains(&format!("id=\"{anchor}\"")),
            "the link to #{anchor} leads nowhere"
        );
    }
    let sections: Vec<&str> = html
        .split("<section class=\"panel\" id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|id| *id != "facts")
        .collect();
    assert_eq!(
        sections, links,
        "the sections, in page order, each linked once"
    );
}
